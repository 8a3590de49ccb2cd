/**
 * Small filesystem primitives that every publisher uses: a reader sees the old file or the new
 * one, never a partial write.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import * as path from "node:path";

/** A temporary name beside `target`: same directory, so the final rename is atomic. */
export function tempPathBeside(target: string): string {
    return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
}

/**
 * Streams `source` (through `transforms`, e.g. a verifier) into a temporary file beside `target`,
 * syncs it, then renames it over `target`. On any failure the temporary file is removed and the
 * error is passed on unchanged; `target` is never seen half-written.
 */
export async function writeStreamAtomic(
    target: string,
    source: NodeJS.ReadableStream | AsyncIterable<unknown>,
    transforms: readonly NodeJS.ReadWriteStream[] = [],
    mode = 0o644,
): Promise<void> {
    const tmp = tempPathBeside(target);
    try {
        // The variadic form: TypeScript's overloads of pipeline do not take a spread list.
        const run = pipeline as (...streams: unknown[]) => Promise<void>;
        await run(source, ...transforms, fs.createWriteStream(tmp, { flags: "wx", mode }));
        await syncPath(tmp);
        await fsp.rename(tmp, target);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    }
}

/**
 * Flushes a file's data, or a directory's entries (so that renames and links inside it survive a
 * crash), to the disk.
 */
export async function syncPath(file: string): Promise<void> {
    const handle = await fsp.open(file, "r");
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/** Writes `data` beside `target` under a temporary name, syncs it, then renames it over `target`. */
export function writeFileAtomic(target: string, data: string | Buffer, mode = 0o644): void {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = tempPathBeside(target);
    const fd = fs.openSync(tmp, "wx", mode);
    try {
        fs.writeFileSync(fd, data);
        fs.fsyncSync(fd);
    } catch (err) {
        fs.closeSync(fd);
        fs.rmSync(tmp, { force: true });
        throw err;
    }
    fs.closeSync(fd);
    try {
        fs.chmodSync(tmp, mode);
        fs.renameSync(tmp, target);
    } catch (err) {
        fs.rmSync(tmp, { force: true });
        throw err;
    }
}

/** Copies `source` to `target` atomically, keeping its mode. */
export function copyFileAtomic(source: string, target: string): void {
    writeFileAtomic(target, fs.readFileSync(source), fs.statSync(source).mode & 0o7777);
}

export function sha256(data: string | Buffer): string {
    return createHash("sha256").update(data).digest("hex");
}

/** Hex SHA256 of a file's bytes, or undefined when it does not exist. */
export function sha256File(file: string): string | undefined {
    try {
        return sha256(fs.readFileSync(file));
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            return undefined;
        }
        throw err;
    }
}
