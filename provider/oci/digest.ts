/**
 * Content digests (`algorithm:hex`) as the OCI image specification defines them, and a stream that
 * checks a blob against its expected digest and size while it passes through.
 *
 * Only the registered algorithms `sha256` and `sha512` are accepted: anything else cannot be
 * verified, and nothing unverified is mirrored.
 */

import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { AirgapError } from "../errors";

export type DigestAlgorithm = "sha256" | "sha512";

/** A parsed digest. `toString` of the pair is `${algorithm}:${hex}`. */
export interface Digest {
    readonly algorithm: DigestAlgorithm;
    /** Lower-case hex of the algorithm's length (64 for sha256, 128 for sha512). */
    readonly hex: string;
}

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** Parses `sha256:<64 lower-case hex>` or `sha512:<128 lower-case hex>`; ERR_PARSE otherwise. */
export function parseDigest(s: string): Digest {
    const problem = digestProblem(s);
    if (problem !== undefined) {
        throw new AirgapError("ERR_PARSE", `invalid digest "${s}": ${problem}`);
    }
    const colon = s.indexOf(":");
    return { algorithm: s.slice(0, colon) as DigestAlgorithm, hex: s.slice(colon + 1) };
}

/** True when `s` is a digest `parseDigest` accepts. */
export function isDigest(s: string): boolean {
    return digestProblem(s) === undefined;
}

function digestProblem(s: string): string | undefined {
    const colon = s.indexOf(":");
    if (colon < 0) {
        return `expected "algorithm:hex", e.g. "sha256:" followed by 64 hex digits`;
    }
    const algorithm = s.slice(0, colon);
    const hex = s.slice(colon + 1);
    if (algorithm !== "sha256" && algorithm !== "sha512") {
        return `unsupported algorithm "${algorithm}" (supported: sha256, sha512)`;
    }
    const want = HEX_LENGTH[algorithm];
    if (hex.length !== want) {
        return `${algorithm} needs ${want} hex digits, got ${hex.length}`;
    }
    if (!/^[0-9a-f]+$/.test(hex)) {
        return "the hex part must be lower-case hexadecimal";
    }
    return undefined;
}

export function formatDigest(d: Digest): string {
    return `${d.algorithm}:${d.hex}`;
}

/** The digest of `data` with `algorithm` (sha256 by default), as `algorithm:hex`. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = "sha256"): string {
    return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

/** What a blob must be: its digest and, when known, its size in bytes. */
export interface ExpectedBlob {
    readonly digest: string;
    readonly size?: number;
}

/**
 * A pass-through stream that hashes and counts what flows through it. It fails with
 * ERR_VERIFICATION as soon as more bytes than the expected size arrive, and at the end when the
 * size or the digest differ; the message names the blob, the expected and the actual value.
 * Consumers MUST treat data they received as unverified until the stream has ended without error.
 */
export class DigestVerifier extends Transform {
    public readonly expected: ExpectedBlob;
    private readonly hash: Hash;
    private readonly algorithm: DigestAlgorithm;
    private received = 0;
    private actualDigest: string | undefined;

    constructor(expected: ExpectedBlob) {
        super();
        const parsed = parseDigest(expected.digest);
        if (expected.size !== undefined && !(Number.isSafeInteger(expected.size) && expected.size >= 0)) {
            throw new AirgapError("ERR_INVALID_ARGUMENT", `blob ${expected.digest}: invalid size ${expected.size}`, {
                argument: "size",
            });
        }
        this.expected = expected;
        this.algorithm = parsed.algorithm;
        this.hash = createHash(parsed.algorithm);
    }

    /** Bytes seen so far. */
    public get bytesReceived(): number {
        return this.received;
    }

    /** The digest of what passed through; defined once the stream has finished. */
    public get digest(): string | undefined {
        return this.actualDigest;
    }

    override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
        this.received += chunk.length;
        const size = this.expected.size;
        if (size !== undefined && this.received > size) {
            callback(
                new AirgapError(
                    "ERR_VERIFICATION",
                    `blob ${this.expected.digest}: expected ${size} bytes, got more (at least ${this.received})`,
                ),
            );
            return;
        }
        this.hash.update(chunk);
        callback(null, chunk);
    }

    override _flush(callback: TransformCallback): void {
        this.actualDigest = `${this.algorithm}:${this.hash.digest("hex")}`;
        const size = this.expected.size;
        if (size !== undefined && this.received !== size) {
            callback(
                new AirgapError(
                    "ERR_VERIFICATION",
                    `blob ${this.expected.digest}: expected ${size} bytes, got ${this.received}`,
                ),
            );
            return;
        }
        if (this.actualDigest !== this.expected.digest) {
            callback(
                new AirgapError(
                    "ERR_VERIFICATION",
                    `blob ${this.expected.digest}: digest mismatch, expected ${this.expected.digest}, got ${this.actualDigest}`,
                ),
            );
            return;
        }
        callback();
    }
}
