/**
 * Reading a whole body into memory, with a cap: the one way the engines read a response or a
 * small file (tokens, tag lists, manifests, `index.json`, error texts) they then parse.
 *
 * Nothing read from a server or from a file someone else wrote is trusted to be small: a body
 * past the cap is cancelled at once (the stream is destroyed, so no more is downloaded or read),
 * and `ERR_TOO_LARGE` names what was read and the limit. A Content-Length or file size already
 * above the cap is refused before a byte is read.
 */

import { createReadStream } from "node:fs";
import { AirgapError } from "../errors";

/** A body to read: an undici response body, a file stream, any async iterable of bytes. */
export type Body = AsyncIterable<unknown> & { destroy?: (error?: Error) => unknown };

export interface ReadBodyOptions {
    /** The size the sender announced (Content-Length, file size), checked before reading. */
    readonly declaredLength?: number;
    /**
     * What to do past the cap: "throw" (the default) refuses the body with `ERR_TOO_LARGE`;
     * "truncate" keeps the first `limit` bytes and cancels the rest (for error texts, where a
     * prefix says enough).
     */
    readonly overflow?: "throw" | "truncate";
}

/** The Content-Length of a response, when it sent a valid one. */
export function contentLengthOf(headers: Readonly<Record<string, string | string[] | undefined>>): number | undefined {
    const value = headers["content-length"];
    const text = Array.isArray(value) ? value[0] : value;
    return typeof text === "string" && /^\d+$/.test(text) ? Number(text) : undefined;
}

/** "4 MiB", "64 KiB", or "1000 bytes": a limit as people read it. */
export function formatSize(bytes: number): string {
    const units: [number, string][] = [
        [1024 ** 3, "GiB"],
        [1024 ** 2, "MiB"],
        [1024, "KiB"],
    ];
    for (const [size, unit] of units) {
        if (bytes >= size && bytes % size === 0) {
            return `${bytes / size} ${unit}`;
        }
    }
    return `${bytes} bytes`;
}

/** ERR_TOO_LARGE naming `what` and the limit (and the size, when it is known). */
export function tooLarge(what: string, limit: number, size?: number): AirgapError {
    const found = size === undefined ? "is larger than" : `is ${size} bytes, more than`;
    return new AirgapError("ERR_TOO_LARGE", `${what} ${found} the ${formatSize(limit)} allowed`);
}

function toBuffer(chunk: unknown): Buffer {
    if (Buffer.isBuffer(chunk)) {
        return chunk;
    }
    if (typeof chunk === "string") {
        return Buffer.from(chunk);
    }
    if (chunk instanceof Uint8Array) {
        return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    throw new TypeError(`a body yielded ${typeof chunk}, not bytes`);
}

function cancel(body: Body): void {
    const stream = body as { on?: (event: string, listener: () => void) => unknown };
    // A destroyed stream may still emit 'error'; nobody listens any more.
    stream.on?.("error", () => undefined);
    body.destroy?.();
}

/**
 * The bytes of `body`, at most `limit` of them. Past the cap the body is cancelled and, unless
 * `overflow` is "truncate", `ERR_TOO_LARGE` is thrown naming `what` and `limit`. Errors of the
 * stream itself are rethrown as they are (callers say what they were reading).
 */
export async function readBodyCapped(
    body: Body,
    limit: number,
    what: string,
    options: ReadBodyOptions = {},
): Promise<Buffer> {
    const truncate = options.overflow === "truncate";
    if (!truncate && options.declaredLength !== undefined && options.declaredLength > limit) {
        cancel(body);
        throw tooLarge(what, limit, options.declaredLength);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
        const buffer = toBuffer(chunk);
        if (size + buffer.length > limit) {
            cancel(body);
            if (!truncate) {
                throw tooLarge(what, limit);
            }
            chunks.push(buffer.subarray(0, limit - size));
            size = limit;
            break;
        }
        chunks.push(buffer);
        size += buffer.length;
    }
    return Buffer.concat(chunks, size);
}

/**
 * A file's bytes, at most `limit` of them (`readBodyCapped` over a file stream). Errors opening
 * or reading the file (ENOENT, EACCES, ...) are rethrown as they are.
 */
export async function readFileCapped(file: string, limit: number, what: string): Promise<Buffer> {
    // One byte past the limit is enough to know the file is too large.
    return readBodyCapped(createReadStream(file, { end: limit }), limit, what);
}

/** `readBodyCapped`, parsed as JSON; ERR_PARSE naming `what` when it is not JSON. */
export async function readJsonCapped(
    body: Body,
    limit: number,
    what: string,
    options: ReadBodyOptions = {},
): Promise<unknown> {
    const bytes = await readBodyCapped(body, limit, what, options);
    try {
        return JSON.parse(bytes.toString("utf8"));
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${what}: the answer is not JSON`, { cause });
    }
}
