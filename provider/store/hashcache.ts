/**
 * A memo of verified SHA256s, so that a re-sync does not re-read every file it already checked.
 *
 * An entry is keyed by what `stat` says of the file: device, inode, size, modification time and
 * change time (nanoseconds). Writing to a file, renaming it, linking it, changing its mode or
 * restoring its modification time all set its change time to now, and a user cannot set it
 * back; so a file whose content changed misses the memo and is hashed again. Hard links share
 * the inode, so one entry serves a download and the pool file linked to it.
 *
 * The memo is loaded once per sync, consulted and filled while it runs and saved at the end (a
 * small line file, written atomically). Entries are persisted only when the change time has
 * sub-second precision: on a file system that keeps whole seconds a change within the same
 * second could go unseen, so there the memo lives in memory only.
 *
 * It is a cache for the sync path only. Whatever reports drift (refresh) MUST hash in full.
 */

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { type BigIntStats, createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { writeFileAtomic } from "./atomic";

const HEADER = "airgap-hashes 1";

function keyOf(info: BigIntStats): string {
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

function statOfSync(file: string): BigIntStats | undefined {
    return fs.statSync(file, { bigint: true, throwIfNoEntry: false });
}

/** Lower-case hex SHA256 of a file, read as a stream. */
export async function sha256OfFile(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
}

export class HashMemo {
    /** Entries loaded from disk, by stat key. */
    private readonly loaded: Map<string, string>;
    /** Entries hit or recorded during this run: what `save` writes. */
    private readonly used = new Map<string, { sha256: string; persist: boolean }>();
    private changed = false;
    /** Files hashed because the memo had no entry for them (for tests and measurements). */
    misses = 0;
    hits = 0;

    private constructor(
        private readonly file: string | undefined,
        loaded: Map<string, string>,
    ) {
        this.loaded = loaded;
    }

    /** A memo that is never saved. */
    static inMemory(): HashMemo {
        return new HashMemo(undefined, new Map());
    }

    /** Loads the memo saved in `file`; an absent or unreadable file gives an empty memo. */
    static async load(file: string): Promise<HashMemo> {
        const loaded = new Map<string, string>();
        const text = await fsp.readFile(file, "utf8").catch(() => "");
        const lines = text.split("\n");
        if (lines[0] === HEADER) {
            for (const line of lines.slice(1)) {
                const [key, sha256] = line.split(" ");
                if (key !== undefined && sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)) {
                    loaded.set(key, sha256);
                }
            }
        }
        return new HashMemo(file, loaded);
    }

    private lookup(info: BigIntStats): string | undefined {
        const key = keyOf(info);
        const sha256 = this.used.get(key)?.sha256 ?? this.loaded.get(key);
        if (sha256 !== undefined && !this.used.has(key)) {
            this.used.set(key, { sha256, persist: true });
        }
        return sha256;
    }

    private remember(info: BigIntStats, sha256: string): void {
        this.used.set(keyOf(info), { sha256, persist: info.ctimeNs % 1_000_000_000n !== 0n });
        this.changed = true;
    }

    /**
     * The SHA256 and size of `file`: from the memo when its stat key matches, else hashed and
     * recorded. Undefined when the file does not exist or is not a regular file.
     *
     * The `stat` calls are synchronous: with thousands of files, a thread-pool round trip per
     * call costs more than the call itself.
     */
    async verifiedSha256(file: string): Promise<{ sha256: string; size: number } | undefined> {
        const before = statOfSync(file);
        if (before === undefined || !before.isFile()) {
            return undefined;
        }
        return this.sha256Of(file, before);
    }

    private async sha256Of(file: string, before: BigIntStats): Promise<{ sha256: string; size: number }> {
        const size = Number(before.size);
        const known = this.lookup(before);
        if (known !== undefined) {
            this.hits++;
            return { sha256: known, size };
        }
        this.misses++;
        const sha256 = await sha256OfFile(file);
        const after = statOfSync(file);
        // Changed while it was read: the hash is of no one state, so it is not remembered.
        if (after !== undefined && keyOf(after) === keyOf(before)) {
            this.remember(after, sha256);
        }
        return { sha256, size };
    }

    /**
     * The SHA256 and size of `file` when the memo has it as the file is now; undefined
     * otherwise. Never reads the file: one synchronous `stat`.
     */
    knownSha256Sync(file: string): { sha256: string; size: number } | undefined {
        const info = statOfSync(file);
        const known = info?.isFile() ? this.lookup(info) : undefined;
        if (info === undefined || known === undefined) {
            return undefined;
        }
        this.hits++;
        return { sha256: known, size: Number(info.size) };
    }

    /** True when `file` exists with exactly this size and SHA256 (a file of another size is not read). */
    async isVerified(file: string, size: number, sha256: string): Promise<boolean> {
        const info = statOfSync(file);
        if (info === undefined || !info.isFile() || info.size !== BigInt(size)) {
            return false;
        }
        return (await this.sha256Of(file, info)).sha256 === sha256.toLowerCase();
    }

    /**
     * Records that `file`, as it is now, has this SHA256: for a caller that has just verified
     * the bytes (and, e.g., renamed the file into place, which changes its change time).
     */
    record(file: string, sha256: string): void {
        const info = statOfSync(file);
        if (info?.isFile()) {
            this.remember(info, sha256.toLowerCase());
        }
    }

    /**
     * Writes the entries used or recorded during this run (the others name files no longer
     * checked). Does nothing for an in-memory memo or when nothing was hashed and nothing loaded
     * went unused.
     */
    async save(): Promise<void> {
        if (this.file === undefined) {
            return;
        }
        const lines = [...this.used].filter(([, e]) => e.persist).map(([key, e]) => `${key} ${e.sha256}`);
        if (!this.changed && lines.length === this.loaded.size) {
            return;
        }
        await fsp.mkdir(path.dirname(this.file), { recursive: true });
        writeFileAtomic(this.file, `${[HEADER, ...lines.sort()].join("\n")}\n`);
    }
}

/** `hashFile`-compatible convenience: the memo's answer, or a full hash when there is no memo. */
export async function verifiedSha256(
    file: string,
    memo?: HashMemo,
): Promise<{ sha256: string; size: number } | undefined> {
    if (memo !== undefined) {
        return memo.verifiedSha256(file);
    }
    const info = statOfSync(file);
    if (info === undefined || !info.isFile()) {
        return undefined;
    }
    return { sha256: await sha256OfFile(file), size: Number(info.size) };
}
