/**
 * OpenPGP verification of APT `InRelease` (clearsigned) and `Release` + `Release.gpg`
 * (detached) files, RSA and Ed25519 keys alike.
 *
 * A file is accepted when at least one of its signatures verifies with one of the given keys,
 * as apt does. Everything else (no signature, only signatures by other keys, a bad signature,
 * a malformed message) throws `ERR_VERIFICATION` naming the key IDs that signed and the keys
 * that were given, so the operator can tell a wrong key from a tampered file.
 */

import { readFile } from "node:fs/promises";
import type { Dispatcher } from "undici";
import type { Key, PublicKey } from "openpgp";
import { openpgp } from "./lazy";
import { extractClearsigned } from "../apt/release";
import { AirgapError, invalidArgument } from "../errors";
import { getBytes, type RetryOptions } from "../http/client";

/**
 * Where keys come from: an armored string (one or several key blocks), a keyring file (armored
 * `.asc` or binary `.gpg` as `gpg --export` writes it; not a GnuPG keybox), or a URL serving
 * either form.
 */
export type KeySource =
    | string
    | { readonly armored: string }
    | { readonly file: string }
    | { readonly url: string }
    /** Key bytes already read (armored or binary); `name` names them in errors. */
    | { readonly data: Uint8Array; readonly name: string };

export interface LoadKeysOptions {
    /** For `url` sources. */
    readonly dispatcher?: Dispatcher;
    readonly retry?: RetryOptions;
    /**
     * Primary-key fingerprints (40 hex digits) the loaded keys MUST include; a key fetched from a
     * URL is only as trustworthy as the URL, so pin it here. Keys not listed are dropped.
     */
    readonly fingerprints?: readonly string[];
}

/** Loaded public keys, ready for the verify functions. */
export interface VerificationKeys {
    readonly keys: readonly PublicKey[];
    /** Primary-key fingerprints, upper-case hex, in load order. */
    readonly fingerprints: readonly string[];
}

/** What a verified file said and who signed it. */
export interface Verified {
    /**
     * The signed text. For an InRelease: without the armor, dash-escaping undone, and without
     * trailing blanks on lines (the signature does not cover them).
     */
    readonly payload: string;
    /** Primary-key fingerprint (upper-case hex) of the given key whose signature verified. */
    readonly fingerprint: string;
    /** Key ID (upper-case hex) of the (sub)key that made that signature. */
    readonly keyId: string;
    /** Key IDs of every signature on the file, verified or not. */
    readonly signedBy: readonly string[];
}

export interface VerifyOptions {
    /** Names the file in error messages, e.g. "InRelease from http://…". Defaults to the file kind. */
    readonly what?: string;
    /** Time at which signatures and keys must be valid. Defaults to now. */
    readonly date?: Date;
}

const ARMORED_BLOCK = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

async function parseKeyData(data: Uint8Array, origin: string): Promise<Key[]> {
    const pgp = await openpgp();
    const text = Buffer.from(data.subarray(0, Math.min(data.length, 4096))).toString("latin1");
    if (data.length >= 12 && Buffer.from(data.subarray(8, 12)).toString("latin1") === "KBXf") {
        throw invalidArgument(
            origin,
            "is a GnuPG keybox, which cannot be read: export the key with `gpg --export KEYID > key.gpg` or `--armor`",
        );
    }
    if (text.includes("-----BEGIN PGP")) {
        const armored = Buffer.from(data).toString("utf8");
        const blocks = armored.match(ARMORED_BLOCK);
        if (blocks === null) {
            throw invalidArgument(origin, "holds no armored OpenPGP key block");
        }
        const keys: Key[] = [];
        for (const block of blocks) {
            keys.push(...(await pgp.readKeys({ armoredKeys: block })));
        }
        return keys;
    }
    return pgp.readKeys({ binaryKeys: data });
}

function sourceName(source: KeySource, index: number): string {
    if (typeof source === "string" || "armored" in source) {
        return `keys[${index}]`;
    }
    if ("data" in source) {
        return source.name;
    }
    return "file" in source ? `keys[${index}] (file ${source.file})` : `keys[${index}] (url ${source.url})`;
}

/**
 * Reads public keys from armored strings, keyring files and URLs. Throws
 * `ERR_INVALID_ARGUMENT` naming the source when one holds no key, a private key, or cannot be
 * parsed, or when a pinned fingerprint is missing.
 */
export async function loadPublicKeys(
    sources: KeySource | readonly KeySource[],
    options: LoadKeysOptions = {},
): Promise<VerificationKeys> {
    const list: readonly KeySource[] = Array.isArray(sources) ? sources : [sources as KeySource];
    const keys: PublicKey[] = [];
    for (const [i, source] of list.entries()) {
        const name = sourceName(source, i);
        let data: Uint8Array;
        if (typeof source === "string" || "armored" in source) {
            data = Buffer.from(typeof source === "string" ? source : source.armored, "utf8");
        } else if ("file" in source) {
            try {
                data = await readFile(source.file);
            } catch (cause) {
                throw invalidArgument(name, `cannot be read: ${(cause as Error).message}`, cause);
            }
        } else if ("data" in source) {
            data = source.data;
        } else {
            data = await getBytes(source.url, {
                dispatcher: options.dispatcher,
                retry: options.retry,
                maxBytes: 4 << 20,
            });
        }
        let parsed: Key[];
        try {
            parsed = await parseKeyData(data, name);
        } catch (cause) {
            if ((cause as { code?: unknown }).code === "ERR_INVALID_ARGUMENT") {
                throw cause;
            }
            throw invalidArgument(name, `is not an OpenPGP public key: ${(cause as Error).message}`, cause);
        }
        if (parsed.length === 0) {
            throw invalidArgument(name, "holds no OpenPGP key");
        }
        for (const key of parsed) {
            if (key.isPrivate()) {
                throw invalidArgument(name, "is a private key: give the public key (gpg --armor --export KEYID)");
            }
            keys.push(key as PublicKey);
        }
    }
    let selected = keys;
    if (options.fingerprints !== undefined) {
        const wanted = options.fingerprints.map((f) => f.replace(/\s+/g, "").toUpperCase());
        selected = keys.filter((key) => wanted.includes(key.getFingerprint().toUpperCase()));
        const found = new Set(selected.map((key) => key.getFingerprint().toUpperCase()));
        const missing = wanted.filter((f) => !found.has(f));
        if (missing.length > 0) {
            const have = keys.map((key) => key.getFingerprint().toUpperCase()).join(", ") || "none";
            throw invalidArgument("fingerprints", `no key with fingerprint ${missing.join(", ")} (loaded: ${have})`);
        }
    }
    if (selected.length === 0) {
        throw invalidArgument("keys", "no public key given");
    }
    return { keys: selected, fingerprints: selected.map((key) => key.getFingerprint().toUpperCase()) };
}

function givenKeys(keys: VerificationKeys): string {
    return keys.keys
        .map((key) => {
            const subkeys = key
                .getKeyIDs()
                .slice(1)
                .map((id) => id.toHex().toUpperCase());
            return subkeys.length === 0
                ? key.getFingerprint().toUpperCase()
                : `${key.getFingerprint().toUpperCase()} (subkeys ${subkeys.join(", ")})`;
        })
        .join(", ");
}

function fail(what: string, problem: string, cause?: unknown): AirgapError {
    return new AirgapError("ERR_VERIFICATION", `${what}: ${problem}`, { cause });
}

interface SignatureResult {
    keyID: { toHex(): string };
    verified: Promise<true>;
}

async function pickVerified(what: string, signatures: readonly SignatureResult[], keys: VerificationKeys) {
    const signedBy = Array.from(signatures, (s) => s.keyID.toHex().toUpperCase());
    if (signatures.length === 0) {
        throw fail(what, "carries no signature");
    }
    const problems: string[] = [];
    for (const signature of signatures) {
        const keyId = signature.keyID.toHex().toUpperCase();
        const owner = keys.keys.find((key) => key.getKeys(signature.keyID as never).length > 0);
        try {
            await signature.verified;
        } catch (cause) {
            if (owner !== undefined) {
                problems.push(`signature by ${keyId} does not verify: ${(cause as Error).message}`);
            }
            continue;
        }
        if (owner !== undefined) {
            return { fingerprint: owner.getFingerprint().toUpperCase(), keyId, signedBy };
        }
    }
    const detail = problems.length > 0 ? problems.join("; ") : "none of them is among the given keys";
    throw fail(
        what,
        `no valid signature by a given key: signed by key ID ${signedBy.join(", ")}; given keys ${givenKeys(keys)}; ${detail}`,
    );
}

/**
 * Verifies a clearsigned file (`InRelease`). The message is taken apart strictly first (see
 * `extractClearsigned`: no text before or after the signed part), so what is verified is
 * exactly what is returned.
 */
export async function verifyClearsigned(
    text: string,
    keys: VerificationKeys,
    options: VerifyOptions = {},
): Promise<Verified> {
    const what = options.what ?? "InRelease";
    let strict: string;
    try {
        strict = extractClearsigned(text).payload;
    } catch (cause) {
        throw fail(what, `is not a clearsigned message: ${(cause as Error).message}`, cause);
    }
    const pgp = await openpgp();
    let result: { data: string; signatures: SignatureResult[] };
    try {
        const message = await pgp.readCleartextMessage({ cleartextMessage: text });
        result = await pgp.verify({ message, verificationKeys: [...keys.keys], date: options.date });
    } catch (cause) {
        throw fail(what, `cannot be read as a signed message: ${(cause as Error).message}`, cause);
    }
    const signer = await pickVerified(what, result.signatures, keys);
    // Cleartext signatures ignore trailing blanks on each line (RFC 4880 §7.1), so the verified
    // text is the one without them; any other difference would make the message ambiguous.
    if (result.data !== strict.replace(/[ \t]+$/gm, "")) {
        throw fail(what, "the signed text is ambiguous (the armor parsers disagree about it)");
    }
    return { payload: result.data, ...signer };
}

/**
 * Verifies `data` (a `Release` file's bytes) against a detached signature (`Release.gpg`,
 * armored or binary).
 */
export async function verifyDetached(
    data: Uint8Array | string,
    signature: Uint8Array | string,
    keys: VerificationKeys,
    options: VerifyOptions = {},
): Promise<Verified> {
    const what = options.what ?? "Release";
    const pgp = await openpgp();
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const sigBytes = typeof signature === "string" ? Buffer.from(signature, "utf8") : Buffer.from(signature);
    let result: { signatures: SignatureResult[] };
    try {
        const armored = sigBytes.subarray(0, 64).toString("latin1").includes("-----BEGIN PGP");
        const parsed = armored
            ? await pgp.readSignature({ armoredSignature: sigBytes.toString("utf8") })
            : await pgp.readSignature({ binarySignature: sigBytes });
        const message = await pgp.createMessage({ binary: bytes });
        result = await pgp.verify({
            message,
            signature: parsed,
            verificationKeys: [...keys.keys],
            date: options.date,
            format: "binary",
        });
    } catch (cause) {
        throw fail(what, `detached signature cannot be read: ${(cause as Error).message}`, cause);
    }
    const signer = await pickVerified(what, result.signatures, keys);
    return { payload: Buffer.from(bytes).toString("utf8"), ...signer };
}
