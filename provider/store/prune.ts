/**
 * Age-based pruning for the caches kept in a mirror's state directory (`publish.stateDir`): the index cache, the lock
 * cache and the remembered Release verifications each gain an entry whenever the upstream
 * changes (an uncompressed Debian `Packages` index is about 50 MB), so without pruning they
 * grow for as long as a site syncs. Entries are touched when used; whatever has not been used
 * for `maxAgeMs` goes. Several mirrors may share one cache, so pruning by age (not by "what this
 * run used") keeps every mirror's entries while it is in use.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** How long an unused cache entry is kept. */
export const CACHE_MAX_AGE_MS = 14 * 24 * 60 * 60 * 1000;

/** Marks a cache entry as used now (best effort: a failure only makes it age sooner). */
export function touch(file: string, now = new Date()): void {
    try {
        fs.utimesSync(file, now, now);
    } catch {
        // Gone or read-only: nothing to keep alive.
    }
}

/**
 * Removes the regular files directly in `dir` last modified more than `maxAgeMs` before `now`
 * (temporary files of writes that never finished included). Returns the names removed, sorted.
 */
export function pruneStale(dir: string, maxAgeMs = CACHE_MAX_AGE_MS, now = Date.now()): string[] {
    let entries: fs.Dirent[];
    try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
        return [];
    }
    const removed: string[] = [];
    for (const entry of entries) {
        if (!entry.isFile()) {
            continue;
        }
        const file = path.join(dir, entry.name);
        const info = fs.statSync(file, { throwIfNoEntry: false });
        if (info !== undefined && now - info.mtimeMs > maxAgeMs) {
            fs.rmSync(file, { force: true });
            removed.push(entry.name);
        }
    }
    return removed.sort();
}
