/**
 * Streaming downloads to files, checked while they stream.
 *
 * The body's size and SHA256 are computed while it streams, into memory for a small file and
 * into a temporary file beside the target for a large one; only a body that matches the
 * expected size and hash is written (small) and renamed into place. A reader of the
 * target therefore sees the old file or a verified new one, never a partial or wrong one.
 */

import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, renameSync, type WriteStream, writeFileSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { AirgapError } from "../errors";
import { discard, type HttpOptions, openOnce, TransientHttpError, truncatedBody, withRetries } from "./client";

export interface ExpectedContent {
    /** Size in bytes. */
    readonly size: number;
    /** Lower-case hex SHA256. */
    readonly sha256: string;
}

export interface DownloadToFileOptions extends HttpOptions {
    /** What the body MUST be; a mismatch throws `ERR_VERIFICATION` and leaves no file behind. */
    readonly expected: ExpectedContent;
    /**
     * Where the body is written before the rename. Defaults to a name of this process and
     * attempt beside the target (`partialPath`), created exclusively: two processes downloading
     * the same target each write their own file, and neither can truncate the other's after its
     * hash was checked. A run killed mid-download leaves that file for its owner's collection.
     */
    readonly tempPath?: string;
    /** Called with the byte count of each chunk as it arrives (also on attempts that fail). */
    readonly onBytes?: (bytes: number) => void;
    /** File mode of the result. Defaults to 0o644. */
    readonly mode?: number;
    /**
     * Bodies up to this many bytes are held in memory until verified, then written in one go
     * (fewer file-system calls for many small files). Defaults to 1 MiB; 0 streams every body.
     */
    readonly memoryLimit?: number;
    /** Create the target's directory first. Defaults to true; false when the caller made it. */
    readonly createDirectory?: boolean;
}

export interface DownloadResult {
    /** Bytes received over all attempts, failed ones included. */
    readonly bytesReceived: number;
    readonly attempts: number;
}

/** Random per process: with the pid, no other process (or earlier one of that pid) makes these names. */
const processTag = `${process.pid}-${randomBytes(4).toString("hex")}`;
let partials = 0;

/**
 * A fresh temporary name for `target`, unique to this process and call:
 * `.<name>.partial-<pid>-<random>-<n>` (one random draw per process, not per file).
 */
export function partialPath(target: string): string {
    partials += 1;
    return join(dirname(target), `.${basename(target)}.partial-${processTag}-${partials.toString(36)}`);
}

function verificationError(url: string, problem: string): AirgapError {
    return new AirgapError("ERR_VERIFICATION", `GET ${url}: ${problem}`);
}

/** Bodies up to this size are checked in memory and written once they match. */
const MEMORY_LIMIT = 1 << 20;

/** Where a body goes while it is checked: memory for small files, a temporary file for large ones. */
interface Sink {
    write(chunk: Buffer): Promise<void> | undefined;
    /** All chunks are written (or held). Throws a write error. */
    close(): Promise<void>;
    /** The body matched: make it `target`, through `tmp` and a rename. */
    commit(tmp: string, target: string, mode: number | undefined): Promise<void>;
    /** The attempt failed: leave nothing behind. */
    abort(tmp: string): Promise<void>;
}

function moveError(tmp: string, target: string, cause: unknown): AirgapError {
    return new AirgapError("ERR_IO", `moving ${tmp} to ${target}`, { cause });
}

/** Holds a small body; nothing touches the disk until it has been verified. */
class MemorySink implements Sink {
    private readonly chunks: Buffer[] = [];
    private written = false;

    write(chunk: Buffer): undefined {
        this.chunks.push(chunk);
        return undefined;
    }

    async close(): Promise<void> {}

    async commit(tmp: string, target: string, mode: number | undefined): Promise<void> {
        this.written = true;
        // Synchronous on purpose: one small write and a rename cost less than the round trips
        // of the same calls through libuv's thread pool, which dominate with many small files.
        try {
            writeFileSync(tmp, Buffer.concat(this.chunks), { mode: mode ?? 0o644, flag: "wx" });
        } catch (cause) {
            throw new AirgapError("ERR_IO", `writing ${tmp}`, { cause });
        }
        try {
            renameSync(tmp, target);
        } catch (cause) {
            throw moveError(tmp, target, cause);
        }
    }

    async abort(tmp: string): Promise<void> {
        this.chunks.length = 0;
        if (this.written) {
            await rm(tmp, { force: true });
        }
    }
}

/** Streams a large body to the temporary file as it arrives. */
class FileSink implements Sink {
    private readonly out: WriteStream;
    private error: Error | undefined;

    constructor(
        private readonly tmp: string,
        mode: number | undefined,
    ) {
        this.out = createWriteStream(tmp, { flags: "wx", mode: mode ?? 0o644 });
        this.out.on("error", (err) => {
            this.error ??= err;
        });
    }

    private check(): void {
        if (this.error !== undefined) {
            throw new AirgapError("ERR_IO", `writing ${this.tmp}`, { cause: this.error });
        }
    }

    async write(chunk: Buffer): Promise<void> {
        if (!this.out.write(chunk)) {
            await new Promise<void>((resolve) => {
                const done = () => {
                    this.out.off("drain", done);
                    this.out.off("error", done);
                    resolve();
                };
                this.out.once("drain", done);
                this.out.once("error", done);
            });
        }
        this.check();
    }

    async close(): Promise<void> {
        this.out.end();
        await finished(this.out).catch(() => undefined);
        this.check();
    }

    async commit(tmp: string, target: string): Promise<void> {
        await rename(tmp, target).catch((cause: unknown) => {
            throw moveError(tmp, target, cause);
        });
    }

    async abort(tmp: string): Promise<void> {
        this.out.destroy();
        await rm(tmp, { force: true });
    }
}

/**
 * Downloads `url` to `target`, verifying size and SHA256 while streaming, with retries on
 * network trouble (see `client.ts`). A body of the wrong size or hash is not retried: it throws
 * `ERR_VERIFICATION` naming the URL, the expected and the actual value, and deletes the
 * temporary file. Memory use does not depend on the size of the file.
 */
export async function downloadToFile(
    url: string,
    target: string,
    options: DownloadToFileOptions,
): Promise<DownloadResult> {
    const { size, sha256 } = options.expected;
    const expectedHash = sha256.toLowerCase();
    const tmp = options.tempPath ?? partialPath(target);
    if (options.createDirectory !== false) {
        await mkdir(dirname(target), { recursive: true });
    }
    let bytesReceived = 0;
    let attempts = 0;
    await withRetries(url, options, async (attempt) => {
        attempts = attempt;
        const response = await openOnce(url, options);
        if (response.contentLength !== undefined && response.contentLength !== size) {
            discard(response.body);
            throw verificationError(
                url,
                `size mismatch: expected ${size} bytes, the server announces ${response.contentLength}`,
            );
        }
        const hash = createHash("sha256");
        const sink = size <= (options.memoryLimit ?? MEMORY_LIMIT) ? new MemorySink() : new FileSink(tmp, options.mode);
        let received = 0;
        let failed: unknown;
        try {
            try {
                for await (const chunk of response.body) {
                    const buffer = chunk as Buffer;
                    received += buffer.length;
                    bytesReceived += buffer.length;
                    options.onBytes?.(buffer.length);
                    if (received > size) {
                        throw verificationError(url, `size mismatch: expected ${size} bytes, received more`);
                    }
                    hash.update(buffer);
                    await sink.write(buffer);
                }
            } catch (err) {
                discard(response.body);
                throw err;
            }
            await sink.close();
            if (response.contentLength !== undefined && received < response.contentLength) {
                throw truncatedBody(received, response.contentLength);
            }
            if (received !== size) {
                // Without Content-Length a short body may be a cut connection: worth a retry.
                throw new TransientHttpError(`size mismatch: expected ${size} bytes, received ${received}`);
            }
            const actual = hash.digest("hex");
            if (actual !== expectedHash) {
                throw verificationError(url, `SHA256 mismatch: expected ${expectedHash}, got ${actual}`);
            }
            await sink.commit(tmp, target, options.mode);
        } catch (err) {
            failed = err;
            throw err;
        } finally {
            if (failed !== undefined) {
                await sink.abort(tmp);
            }
        }
    });
    return { bytesReceived, attempts };
}
