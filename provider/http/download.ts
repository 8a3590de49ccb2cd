/**
 * Streaming downloads to files, checked while they stream.
 *
 * The body goes to a temporary file beside the target while its size and SHA256 are computed;
 * only a body that matches the expected size and hash is renamed into place. A reader of the
 * target therefore sees the old file or a verified new one, never a partial or wrong one.
 */

import { createHash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
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
     * Where the body is written before the rename. Defaults to `.<name>.partial` beside the
     * target: a run killed mid-download leaves at most that file, which the next download of
     * the same target overwrites. Callers MUST NOT download to one target concurrently.
     */
    readonly tempPath?: string;
    /** Called with the byte count of each chunk as it arrives (also on attempts that fail). */
    readonly onBytes?: (bytes: number) => void;
    /** File mode of the result. Defaults to 0o644. */
    readonly mode?: number;
}

export interface DownloadResult {
    /** Bytes received over all attempts, failed ones included. */
    readonly bytesReceived: number;
    readonly attempts: number;
}

/** The temporary name `downloadToFile` uses for `target` by default. */
export function partialPath(target: string): string {
    return join(dirname(target), `.${basename(target)}.partial`);
}

/** Ends the stream and waits until its data is written; write errors are reported by the caller's listener. */
async function closeStream(stream: WriteStream): Promise<void> {
    stream.end();
    await finished(stream).catch(() => undefined);
}

function verificationError(url: string, problem: string): AirgapError {
    return new AirgapError("ERR_VERIFICATION", `GET ${url}: ${problem}`);
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
    await mkdir(dirname(target), { recursive: true });
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
        const out = createWriteStream(tmp, { flags: "w", mode: options.mode ?? 0o644 });
        let writeError: Error | undefined;
        out.on("error", (err) => {
            writeError ??= err;
        });
        const checkWrite = () => {
            if (writeError !== undefined) {
                throw new AirgapError("ERR_IO", `writing ${tmp}`, { cause: writeError });
            }
        };
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
                    if (!out.write(buffer)) {
                        await new Promise<void>((resolve) => {
                            const done = () => {
                                out.off("drain", done);
                                out.off("error", done);
                                resolve();
                            };
                            out.once("drain", done);
                            out.once("error", done);
                        });
                    }
                    checkWrite();
                }
            } catch (err) {
                discard(response.body);
                throw err;
            }
            await closeStream(out);
            checkWrite();
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
            try {
                await rename(tmp, target);
            } catch (cause) {
                throw new AirgapError("ERR_IO", `moving ${tmp} to ${target}`, { cause });
            }
        } catch (err) {
            failed = err;
            throw err;
        } finally {
            if (failed !== undefined) {
                out.destroy();
                await rm(tmp, { force: true });
            }
        }
    });
    return { bytesReceived, attempts };
}
