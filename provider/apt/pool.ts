/**
 * The `pool/` of a published APT repository: where each `.deb` lives, and how it gets there.
 *
 * Layout, as Debian's archive and aptly lay it out:
 *
 *     pool/<component>/<prefix>/<source>/<name>_<version without epoch>_<arch>.deb
 *
 * where `<prefix>` is the first letter of the source package name, or its first four letters
 * when the name starts with "lib" (`pool/main/libf/libfoo/...`).
 *
 * Contract: a pool file, once placed, is never rewritten in place. A target that already holds
 * the right bytes (checked by SHA256) is kept; otherwise the file is linked or copied beside
 * the target under a temporary name, hashed there, synced, and renamed over it. Publishing
 * places pool files before the indexes that name them are switched in, and removes a pool file
 * only once no published index names it.
 */

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { AirgapError } from "../errors";
import { syncPath } from "../store/atomic";
import { type HashMemo, verifiedSha256 } from "../store/hashcache";
import type { PackageRecord } from "./types";

/** `libfoo` → `libf`, `nginx` → `n`. */
export function poolPrefix(source: string): string {
    return source.startsWith("lib") && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
}

/** The Debian file name of a package: `<name>_<version without epoch>_<arch>.deb`. */
export function debFileName(name: string, version: string, architecture: string): string {
    const colon = version.indexOf(":");
    return `${name}_${colon >= 0 ? version.slice(colon + 1) : version}_${architecture}.deb`;
}

/** Where a package is published, relative to the repository root (always `/`-separated). */
export function poolPath(record: Pick<PackageRecord, "name" | "version" | "architecture" | "component" | "source">) {
    return `pool/${record.component}/${poolPrefix(record.source)}/${record.source}/${debFileName(
        record.name,
        record.version,
        record.architecture,
    )}`;
}

/** Lower-case hex SHA256 and size of a file, read in full; undefined when it is not there. */
export function hashFile(file: string): Promise<{ sha256: string; size: number } | undefined> {
    return verifiedSha256(file);
}

/** How pool files are made from the caller's files. */
export type PlaceMode = "hardlink" | "copy";

export interface PlaceOptions {
    /**
     * `hardlink` (the default) links the caller's file (a content store, a download directory)
     * into the pool and falls back to a copy across file systems; `copy` always copies. A hard
     * link shares the bytes: the caller MUST NOT change its file in place afterwards.
     */
    readonly mode?: PlaceMode;
    /**
     * Verified hashes: a target already in place is checked through it (a hard link to a
     * download verified in this run shares its inode and entry), and a placed file is recorded.
     */
    readonly hashMemo?: HashMemo;
    /** The target is named by a published index, so it most likely exists: check it first. */
    readonly published?: boolean;
}

/** What `placePoolFile` did. */
export type PlaceResult = "kept" | "linked" | "copied";

/**
 * The fast path for a target that does not exist yet: when the memo knows `source` has the
 * expected content (it was verified when downloaded, or by an earlier run, and has not changed
 * since), links it straight to `target` (a link either creates the name whole or fails) and
 * records the target, which is the same inode. Returns false when this path does not apply
 * (no memo, copy mode, unknown or other content, a target that appeared meanwhile, links not
 * possible there); the caller then takes the verifying path.
 */
function linkVerified(
    source: string,
    target: string,
    expected: { sha256: string; size: number },
    options: PlaceOptions,
): boolean {
    const memo = options.hashMemo;
    if (memo === undefined || (options.mode ?? "hardlink") !== "hardlink") {
        return false;
    }
    // Synchronous: a handful of metadata calls per file, far cheaper than as many round trips
    // through libuv's thread pool when thousands of files are placed.
    const known = memo.knownSha256Sync(source);
    if (known === undefined || known.sha256 !== expected.sha256 || known.size !== expected.size) {
        return false;
    }
    try {
        fs.linkSync(source, target);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
            return false;
        }
        // The directory is new; a missing source shows up again on the verifying path.
        try {
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.linkSync(source, target);
        } catch {
            return false;
        }
    }
    memo.record(target, expected.sha256);
    return true;
}

/**
 * Makes `target` hold the bytes of `source`, which must have the given SHA256 and size.
 *
 * Keeps `target` when it already has that content. Otherwise links or copies `source` to a
 * temporary name beside it, verifies the temporary file's SHA256 and size (nothing unverified
 * is published: a mismatch is an `ERR_VERIFICATION` AirgapError and the target is left alone),
 * syncs it and renames it over `target`. Callers MUST NOT call this for a target that a
 * published index names with other content: the rename would change a published file.
 */
export async function placePoolFile(
    source: string,
    target: string,
    expected: { sha256: string; size: number },
    options: PlaceOptions = {},
): Promise<PlaceResult> {
    // A new target linked from a source the memo knows: no stat, no read (see linkVerified).
    if (options.published !== true && linkVerified(source, target, expected, options)) {
        return "linked";
    }
    const existing = fs.statSync(target, { throwIfNoEntry: false });
    if (existing?.isFile() && existing.size === expected.size) {
        const current =
            options.hashMemo !== undefined ? await options.hashMemo.verifiedSha256(target) : await hashFile(target);
        if (current?.sha256 === expected.sha256) {
            return "kept";
        }
    }
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
    let result: PlaceResult = "copied";
    try {
        if ((options.mode ?? "hardlink") === "hardlink") {
            try {
                await fsp.link(source, tmp);
                result = "linked";
            } catch (err) {
                const code = (err as NodeJS.ErrnoException).code;
                // EXDEV: another file system; EPERM/EMLINK/ENOTSUP: links not allowed there.
                if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK" && code !== "ENOTSUP") {
                    throw err;
                }
            }
        }
        if (result === "copied") {
            await fsp.copyFile(source, tmp);
            await fsp.chmod(tmp, 0o644);
        }
        const actual = await hashFile(tmp);
        if (actual === undefined || actual.sha256 !== expected.sha256 || actual.size !== expected.size) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${source}: expected SHA256 ${expected.sha256} and ${expected.size} bytes, found ${
                    actual === undefined ? "no file" : `SHA256 ${actual.sha256} and ${actual.size} bytes`
                }; refusing to publish it as ${target}`,
            );
        }
        if (result === "copied") {
            await syncPath(tmp);
        }
        await fsp.rename(tmp, target);
        // The rename changed the file's ctime; the bytes are those just verified.
        options.hashMemo?.record(target, expected.sha256);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        if (
            (err as NodeJS.ErrnoException).code === "ENOENT" &&
            (await fsp.stat(source).catch(() => undefined)) === undefined
        ) {
            throw new AirgapError("ERR_NOT_FOUND", `${source}: no such file to publish as ${target}`, { cause: err });
        }
        throw err;
    }
    return result;
}

/**
 * Every regular file below `<repoDir>/pool`, as repository-relative paths (`pool/...`), sorted.
 * Temporary files of an interrupted placement (`.name.tmp-*`) are included: they are garbage.
 */
export async function listPoolFiles(repoDir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
        let entries: import("node:fs").Dirent[];
        try {
            entries = await fsp.readdir(path.join(repoDir, rel), { withFileTypes: true });
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") {
                return;
            }
            throw err;
        }
        for (const entry of entries) {
            const child = `${rel}/${entry.name}`;
            if (entry.isDirectory()) {
                await walk(child);
            } else {
                out.push(child);
            }
        }
    };
    await walk("pool");
    return out.sort();
}

/**
 * Removes the given pool files (repository-relative paths), then their directories up to
 * `pool/` as they become empty. Paths outside `pool/` are ignored. Returns the paths removed
 * (those that existed), sorted.
 */
export async function removePoolFiles(repoDir: string, files: readonly string[]): Promise<string[]> {
    const removed: string[] = [];
    const dirs = new Set<string>();
    for (const rel of files) {
        // The names come from published indexes, which may have been edited: never leave pool/.
        if (!rel.startsWith("pool/") || path.posix.normalize(rel) !== rel || rel.split("/").includes("..")) {
            continue;
        }
        try {
            await fsp.unlink(path.join(repoDir, rel));
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") {
                continue;
            }
            throw err;
        }
        removed.push(rel);
        dirs.add(path.posix.dirname(rel));
    }
    // Deepest first, so a parent is tried after its children.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
        for (let d = dir; d !== "pool" && d.startsWith("pool/"); d = path.posix.dirname(d)) {
            try {
                await fsp.rmdir(path.join(repoDir, d));
            } catch {
                break; // Not empty (or gone): its parents are not empty either.
            }
        }
    }
    return removed.sort();
}

/**
 * Removes the pool files that `keep` does not name (repository-relative paths), then the
 * directories left empty. Returns the removed paths, sorted.
 */
export async function collectPool(repoDir: string, keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const rel of await listPoolFiles(repoDir)) {
        if (!keep.has(rel)) {
            await fsp.rm(path.join(repoDir, rel), { force: true });
            removed.push(rel);
        }
    }
    const prune = async (rel: string): Promise<boolean> => {
        const dir = path.join(repoDir, rel);
        let entries: import("node:fs").Dirent[];
        try {
            entries = await fsp.readdir(dir, { withFileTypes: true });
        } catch {
            return false;
        }
        let empty = true;
        for (const entry of entries) {
            if (!entry.isDirectory() || !(await prune(`${rel}/${entry.name}`))) {
                empty = false;
            }
        }
        if (empty && rel !== "pool") {
            await fsp.rmdir(dir).catch(() => undefined);
        }
        return empty;
    };
    await prune("pool");
    return removed;
}
