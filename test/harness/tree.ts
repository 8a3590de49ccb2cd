import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/**
 * Every entry below `dir` (symlinks not followed), for before/after comparisons: directories with
 * their mode, symlinks with their target, files with content hash, size and mode. With
 * `identity`, files also carry inode and mtime, so a file rewritten with the same bytes shows.
 */
export function snapshotTree(dir: string, options: { identity?: boolean } = {}): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (rel: string): void => {
        for (const name of readdirSync(join(dir, rel)).sort()) {
            const child = rel === "" ? name : `${rel}/${name}`;
            const full = join(dir, child);
            const info = lstatSync(full);
            const mode = (info.mode & 0o7777).toString(8);
            if (info.isSymbolicLink()) {
                out[child] = `link -> ${readlinkSync(full)}`;
            } else if (info.isDirectory()) {
                out[child] = `dir ${mode}`;
                walk(child);
            } else {
                const hash = createHash("sha256").update(readFileSync(full)).digest("hex");
                const identity = options.identity ? ` ino=${info.ino} mtime=${info.mtimeMs}` : "";
                out[child] = `file ${hash} ${info.size} ${mode}${identity}`;
            }
        }
    };
    walk("");
    return out;
}
