/**
 * What makes a re-run that changes nothing cheap, without trusting anything that could have
 * changed:
 *
 * - **Lock cache.** A resolution is a pure function of the signed Release (which pins every
 *   index by hash), the components and architectures read, the queries and the options. It is
 *   kept under the index cache keyed by all of these, so a resolve against an upstream whose
 *   Release did not change reads one small file instead of parsing and resolving the indexes.
 * - **Sync stamp.** After a successful sync, `<stateDir>/stamps/<prefix>` records a digest
 *   of the sync's inputs, the state it returned, the generation behind `dists/<dist>` and the
 *   SHA256 of every file of the published suite (its index, Release and signature files and its
 *   pool files). A sync with the same inputs whose published files all still have those hashes
 *   (checked through the hash memo: one `stat` per unchanged file, a full read for any other)
 *   returns the recorded state without contacting upstream. Any difference (drift, an edited
 *   or missing file, another generation, other inputs) and the sync runs in full, which repairs
 *   it. The signing key itself is never written: only a SHA256 of it is part of the digest.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { canonicalJson } from "../store/canonical";
import { sha256, writeFileAtomic } from "../store/atomic";
import type { HashMemo } from "../store/hashcache";
import { CACHE_MAX_AGE_MS, pruneStale, touch } from "../store/prune";

/** Bumped whenever the resolver's answer for the same input can change. */
const LOCK_CACHE_FORMAT = 1;
const STAMP_FORMAT = 1;

export interface LockCacheKey {
    /** The verified Release text. */
    releaseText: string;
    components: readonly string[];
    architectures: readonly string[];
    queries: readonly string[];
    withDeps: boolean;
    followRecommends: boolean;
}

function lockCacheFile(cacheDir: string, key: LockCacheKey): string {
    const digest = sha256(
        canonicalJson([
            LOCK_CACHE_FORMAT,
            sha256(key.releaseText),
            key.components,
            key.architectures,
            key.queries,
            key.withDeps,
            key.followRecommends,
        ]),
    );
    return path.join(cacheDir, "locks", `${digest}.json`);
}

/** The lock resolved earlier for exactly this key, or undefined. */
export function readCachedLock(cacheDir: string, key: LockCacheKey): Record<string, string> | undefined {
    const file = lockCacheFile(cacheDir, key);
    let parsed: unknown;
    try {
        parsed = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
        return undefined;
    }
    if (
        typeof parsed !== "object" ||
        parsed === null ||
        Array.isArray(parsed) ||
        !Object.values(parsed).every((v) => typeof v === "string")
    ) {
        return undefined;
    }
    touch(file);
    return parsed as Record<string, string>;
}

/**
 * Removes what the caches under `cacheDir` (indexes, locks, remembered verifications) have not
 * used for `maxAgeMs`.
 */
export function pruneCaches(cacheDir: string, maxAgeMs = CACHE_MAX_AGE_MS): void {
    for (const sub of ["packages", "locks", "verified"]) {
        pruneStale(path.join(cacheDir, sub), maxAgeMs);
    }
}

export function writeCachedLock(cacheDir: string, key: LockCacheKey, lock: Record<string, string>): void {
    writeFileAtomic(lockCacheFile(cacheDir, key), JSON.stringify(lock));
}

interface StampFile<S> {
    format: number;
    inputs: string;
    /** The suite's `dists/<dist>` symlink target when the stamp was written. */
    link: string;
    /** Repository-relative path → SHA256 of every file of the published suite. */
    files: Record<string, string>;
    state: S;
}

/** A digest of everything a sync's result depends on; secrets enter only as their SHA256. */
export function syncInputsDigest(inputs: {
    source: unknown;
    packages: unknown;
    publish: unknown;
    signing?: { privateKey: string; passphrase?: string };
    allowUnsigned?: boolean;
    /** The optional indexes asked for (`optionalIndexesInputs`); absent when none. */
    optional?: Record<string, unknown>;
}): string {
    return sha256(
        canonicalJson({
            ...(inputs.optional === undefined ? {} : { optional: inputs.optional }),
            format: STAMP_FORMAT,
            source: inputs.source,
            packages: inputs.packages,
            publish: inputs.publish,
            signing:
                inputs.signing === undefined
                    ? null
                    : sha256(`${inputs.signing.privateKey}\n${inputs.signing.passphrase ?? ""}`),
            allowUnsigned: inputs.allowUnsigned ?? false,
        }),
    );
}

/** `<stateDir>/stamps/<prefix>`: the stamp of the last sync of the mirror published under `prefix`. */
export function stampFile(stateDir: string, prefix: string): string {
    return path.join(stateDir, "stamps", prefix.replace(/\//g, "__") || "_");
}

/**
 * Every file of the suite now behind `dists/<distribution>` (relative to `repoDir`), plus the
 * given pool files. Undefined when the suite is not a generation symlink.
 */
function suiteFiles(repoDir: string, distribution: string): { link: string; files: string[] } | undefined {
    const distLink = path.join(repoDir, "dists", distribution);
    let link: string;
    try {
        link = fs.readlinkSync(distLink);
    } catch {
        return undefined;
    }
    const suiteDir = path.resolve(path.dirname(distLink), link);
    const files: string[] = [];
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) {
                walk(full);
            } else {
                files.push(path.relative(repoDir, full));
            }
        }
    };
    walk(suiteDir);
    return { link, files };
}

/**
 * Records the suite just published: hashes its dists files (small) through the memo, takes the
 * pool files' hashes from the records it was published from.
 */
export async function writeStamp<S>(options: {
    file: string;
    inputs: string;
    repoDir: string;
    distribution: string;
    poolFiles: ReadonlyMap<string, string>;
    state: S;
    memo: HashMemo;
}): Promise<void> {
    const suite = suiteFiles(options.repoDir, options.distribution);
    if (suite === undefined) {
        fs.rmSync(options.file, { force: true });
        return;
    }
    const files: Record<string, string> = {};
    for (const rel of suite.files) {
        const found = await options.memo.verifiedSha256(path.join(options.repoDir, rel));
        if (found !== undefined) {
            files[rel] = found.sha256;
        }
    }
    for (const [rel, hash] of options.poolFiles) {
        files[rel] = hash;
    }
    const stamp: StampFile<S> = {
        format: STAMP_FORMAT,
        inputs: options.inputs,
        link: suite.link,
        files,
        state: options.state,
    };
    fs.mkdirSync(path.dirname(options.file), { recursive: true });
    writeFileAtomic(options.file, JSON.stringify(stamp));
}

/**
 * The state a previous sync with the same inputs returned, when the suite it published is
 * still exactly in place; undefined otherwise.
 */
export async function readStampIfIntact<S>(options: {
    file: string;
    inputs: string;
    repoDir: string;
    distribution: string;
    memo: HashMemo;
}): Promise<S | undefined> {
    let stamp: StampFile<S>;
    try {
        stamp = JSON.parse(fs.readFileSync(options.file, "utf8")) as StampFile<S>;
    } catch {
        return undefined;
    }
    if (stamp.format !== STAMP_FORMAT || stamp.inputs !== options.inputs || typeof stamp.files !== "object") {
        return undefined;
    }
    let link: string;
    try {
        link = fs.readlinkSync(path.join(options.repoDir, "dists", options.distribution));
    } catch {
        return undefined;
    }
    if (link !== stamp.link) {
        return undefined;
    }
    for (const [rel, expected] of Object.entries(stamp.files)) {
        if ((await options.memo.verifiedSha256(path.join(options.repoDir, rel)))?.sha256 !== expected) {
            return undefined;
        }
    }
    return stamp.state;
}
