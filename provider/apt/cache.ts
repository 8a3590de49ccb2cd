/**
 * A local cache of `Packages` indexes, so that an index whose signed hash has not changed is
 * neither downloaded nor decompressed again.
 *
 * Entries are keyed by the SHA256 that the signed `Release` lists for the file that was
 * downloaded (e.g. `Packages.xz`): a key names exactly one content, so an entry never goes stale
 * and needs no expiry, only pruning. An entry holds the *decompressed* index (the raw stanzas),
 * which re-parses faster than any serialization of the records would load and costs no
 * decompression on a hit.
 *
 * Layout: `<dir>/packages/<sha256>`; files being written are `.<sha256>.<random>.tmp` beside
 * them and are renamed into place only when complete. A hit touches the entry; entries unused
 * for two weeks are removed after each read of the upstream (`store/prune.ts`).
 *
 * The cache is written only with verified content, but it is a plain directory: readers SHOULD
 * check an entry against the signed hash of the uncompressed index when the Release lists one
 * (`fetchPackageIndexes` does, while parsing).
 */

import { randomBytes } from "node:crypto";
import { createReadStream, type ReadStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument } from "../errors";
import { touch } from "../store/prune";

const KEY = /^[0-9a-f]{64}$/;

export class IndexCache {
    readonly dir: string;

    constructor(dir: string) {
        if (dir === "") {
            throw invalidArgument("cacheDir", "must be a directory path");
        }
        this.dir = join(dir, "packages");
    }

    /** Where the entry for `key` lives (whether or not it exists). */
    path(key: string): string {
        if (!KEY.test(key)) {
            throw invalidArgument("key", `must be a lower-case hex SHA256, got ${JSON.stringify(key)}`);
        }
        return join(this.dir, key);
    }

    /** True when the entry exists; marks it as used (entries unused for two weeks are pruned). */
    async has(key: string): Promise<boolean> {
        const info = await stat(this.path(key)).catch(() => undefined);
        if (info?.isFile() !== true) {
            return false;
        }
        touch(this.path(key));
        return true;
    }

    /** The entry's content as a stream, or undefined on a miss. */
    async open(key: string): Promise<ReadStream | undefined> {
        if (!(await this.has(key))) {
            return undefined;
        }
        return createReadStream(this.path(key), { highWaterMark: 256 * 1024 });
    }

    /** A fresh temporary path in the cache directory, for `commit` to move into place. */
    async tempPath(key: string): Promise<string> {
        this.path(key);
        await mkdir(this.dir, { recursive: true });
        return join(this.dir, `.${key}.${randomBytes(6).toString("hex")}.tmp`);
    }

    /** Moves a complete file (from `tempPath`) into place as the entry for `key`. */
    async commit(key: string, file: string): Promise<void> {
        await rename(file, this.path(key));
    }

    /** Drops one entry (e.g. one found damaged). */
    async remove(key: string): Promise<void> {
        await rm(this.path(key), { force: true });
    }

    /**
     * Removes every entry not in `keep`, and leftover temporary files. Returns the number of
     * files removed.
     */
    async prune(keep: Iterable<string>): Promise<number> {
        const wanted = new Set(keep);
        let names: string[];
        try {
            names = await readdir(this.dir);
        } catch {
            return 0;
        }
        let removed = 0;
        for (const name of names) {
            if (KEY.test(name) ? !wanted.has(name) : name.endsWith(".tmp")) {
                await rm(join(this.dir, name), { force: true });
                removed++;
            }
        }
        return removed;
    }
}
