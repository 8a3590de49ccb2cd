/**
 * The AptMirror chain of named steps (aptly's mirror update + publish):
 *
 *   fetchUpstream (key material, Release, verify, indexes) → resolveLock | selectLocked
 *     → downloadPackages → publishRepo → collect downloads
 *
 * The SDK calls `resolveLock` while the program runs (preview too) and passes the lock as an
 * input; the dynamic provider calls `syncMirror`, `readMirror` and `removeMirror`.
 *
 * One file for the AptMirror engine's entry: the chain of steps above, and the paths of the
 * engine state it keeps per mirror.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Dispatcher } from "undici";
import { AirgapError, hasCode, invalidArgument, problemOf } from "../errors";
import { getBytes } from "../http/client";
import { type KeySource, loadPublicKeys, type VerificationKeys } from "../pgp/verify";
import { sha256, sha256File } from "../store/atomic";
import { HashMemo } from "../store/hashcache";
import { xzIndexCompressor } from "../store/xz";
import { type DownloadProgress, downloadPackages } from "./download";
import { checkRequest, type FetchedRelease, fetchPackageIndexes, fetchRelease } from "./fetch";
import { type PublishHooks, type PublishOptions, prepareIndexes, publishRepo, unpublish } from "./publish";
import { readPublished } from "./publish_read";
import { repoDirOf } from "./publish_layout";
import { resolve } from "./resolver";
import { type DependencySourceSpec, type FetchedDependency, resolveAcross } from "./external";
import { pruneCaches, readCachedLock, readStampIfIntact, syncInputsDigest, writeCachedLock, writeStamp } from "./stamp";
import type { PackageRecord, Stanza } from "./types";
import { takeLock } from "../store/lockfile";
import {
    adoptLegacyState,
    adoptLegacyStateDir,
    downloadDir,
    hashMemoFile,
    indexCacheDir,
    mirrorLockFile,
    removeEmptyStateDirs,
    stateDirProblem,
    suiteStampFile,
} from "./state_dir";
import { privateTempDir } from "../store/private";
import {
    checkKeyUrl,
    describePins,
    downgradeProblem,
    normalizeFingerprints,
    pinKeys,
    readKeyFile,
    renewalDue,
    validForMs,
} from "./trust";
import { parseRelease } from "./release";
import { optionalIndexesInputs, prepareOptionalIndexes } from "./optional_indexes";
import { formatDuration, PROGRESS_INTERVAL_MS } from "../progress";

/**
 * Defaults of an AptMirror, defined once: the SDK applies them to what a program leaves out, and
 * the engine's steps use the same when called without them (`components` and `architectures`
 * left out of an engine call mean every one the Release offers, as in aptly).
 */
export const APT_DEFAULTS = {
    components: ["main"],
    architectures: ["amd64"],
    withDeps: true,
    followRecommends: false,
} as const;

export interface AptSourceSpec {
    /** Repository root, e.g. "http://deb.example/debian". */
    url: string;
    distribution: string;
    /** Defaults to every component the Release lists. */
    components?: string[];
    /** Defaults to every architecture the Release lists; packages of "all" always come along. */
    architectures?: string[];
    /** Armored public key(s) that sign the upstream Release. */
    key?: string;
    /** URL of the key (mini-mirror's source_key_url). */
    keyUrl?: string;
    /** Path of a keyring file (.asc armored or .gpg binary). */
    keyring?: string;
    /** Accept an unsigned upstream. Defaults to false. */
    allowUnsigned?: boolean;
    /**
     * Primary-key fingerprints (40 or 64 hex digits, spaces allowed, any case): only the keys
     * listed may verify the Release, whichever of key, keyUrl and keyring supplied them.
     */
    keyFingerprints?: string[];
}

export interface AptPublishSpec {
    /** Directory the mirrors are served from. */
    root: string;
    /** Sub-directory for this mirror (mini-mirror's source prefix). */
    prefix: string;
    /** Defaults to the source's distribution. */
    distribution?: string;
    origin?: string;
    label?: string;
    description?: string;
    /** Writes `Valid-Until` (now + this) into the published Release: "7d", "12h" or seconds. */
    validFor?: string | number;
    /** Engine state (downloads, caches, stamps, locks), outside `root`. Defaults to `<root>.airgap`. */
    stateDir?: string;
}

export interface AptSigningSpec {
    privateKey: string;
    passphrase?: string;
}

/** The lock: `name/arch` → version (several versions separated by a space). */
export type AptLock = Record<string, string>;

/** What a program resolves: the lock and the `Date` of the upstream Release it came from. */
export interface AptProgramLock {
    packages: AptLock;
    /** Dependencies other sources satisfy (`dependencies.from`): `name/arch` → `version from <url> <suite>`. */
    external?: AptLock;
    /** ISO 8601; absent when the upstream Release has no `Date`. */
    upstreamDate?: string;
}

export interface AptMirrorSpec {
    source: AptSourceSpec;
    packages: AptLock;
    publish: AptPublishSpec;
    signing?: AptSigningSpec;
    /** Publish without a signature. Defaults to false. */
    allowUnsigned?: boolean;
    /** Downloads at once. Defaults to 8. */
    concurrency?: number;
    /** The upstream Release `Date` the lock was resolved from (ISO 8601); absent in older states. */
    upstreamDate?: string;
    /** Accept an upstream Release older than the one last synced. Defaults to false. */
    allowDowngrade?: boolean;
    /** Also publish the source packages of the locked binaries and `Sources` indexes. Defaults to false. */
    withSources?: boolean;
    /** Also publish `<component>/Contents-<arch>.gz`, the file lists apt-file reads. Defaults to false. */
    contents?: boolean;
    /**
     * debian-installer package queries (aptly syntax): the udebs they select, with their
     * dependencies among udebs, resolved at sync time and published in
     * `<component>/debian-installer/binary-<arch>/`.
     */
    udebs?: string[];
    /**
     * Dependencies satisfied by the sources of `dependencies.from` (`name/arch` → `version from
     * <url> <suite>`): recorded so preview shows them; not copied by this mirror.
     */
    external?: AptLock;
}

export interface AptMirrorState extends AptMirrorSpec {
    packageCount: number;
    /** Bytes of the published packages. */
    bytes: number;
    /** SHA256 of the published Release file. */
    releaseSha256: string;
    /** `<root>/<prefix>`. */
    publishedPath: string;
    /** Armored public key clients put in Signed-By ("" when unsigned). */
    publicKey: string;
    /** Problems `read` found in the published tree; empty when it is as published. */
    drift: string[];
    /** `Date` of the upstream Release of the last sync (ISO 8601); absent in older states. */
    syncedReleaseDate?: string;
    /** `Valid-Until` of the published Release (ISO 8601), with `publish.validFor`. */
    validUntil?: string;
}

export interface Upstream {
    release: FetchedRelease;
    components: string[];
    architectures: string[];
    packages: PackageRecord[];
    /** The source it was fetched for; `syncMirror` reuses an upstream fetched for the same source. */
    source?: AptSourceSpec;
}

export interface IoOptions {
    dispatcher?: Dispatcher;
    /** Where indexes are kept between runs, keyed by their signed hash. */
    cacheDir?: string;
}

export {
    downloadDir,
    hashMemoFile,
    indexCacheDir,
    mirrorLockFile,
    stateDirOf,
    stateDirProblem,
    suiteStampFile,
} from "./state_dir";

/**
 * The name of a package's download in `downloadDir`: flat (one directory for every download,
 * not one per source package as in a pool) and unique per content:
 * `<first 16 hex digits of its SHA256>_<file name>`.
 */
export function downloadName(record: Pick<PackageRecord, "filename" | "sha256">): string {
    return `${record.sha256.slice(0, 16).toLowerCase()}_${path.posix.basename(record.filename)}`;
}

/** True when two source specs name the same upstream, read the same way. */
function sameSource(a: AptSourceSpec, b: AptSourceSpec): boolean {
    const canonical = (s: AptSourceSpec) =>
        JSON.stringify([
            s.url,
            s.distribution,
            s.components ?? null,
            s.architectures ?? null,
            s.key ?? null,
            s.keyUrl ?? null,
            s.keyring ?? null,
            s.allowUnsigned ?? false,
            s.keyFingerprints ?? null,
        ]);
    return canonical(a) === canonical(b);
}

/** The key sources of an upstream, and a digest of their bytes (for `verifiedMemo`). */
async function keyMaterial(
    source: AptSourceSpec,
    io: IoOptions,
): Promise<{ sources: KeySource[]; id: string; pins?: string[] } | undefined> {
    const sources: KeySource[] = [];
    // One line per source: its kind and the SHA256 of its bytes; and the pins.
    const parts: string[] = [];
    const pins = source.keyFingerprints === undefined ? undefined : normalizeFingerprints(source.keyFingerprints);
    if (pins !== undefined) {
        parts.push(`pins ${[...pins].sort().join(" ")}`);
    }
    if (source.key) {
        sources.push({ armored: source.key });
        parts.push(`key ${sha256(source.key)}`);
    }
    if (source.keyUrl) {
        // Read once here; the bytes go to the key loader, so a verification does not fetch twice.
        const url = checkKeyUrl(source.keyUrl, pins !== undefined);
        const data =
            url.protocol === "file:"
                ? readKeyFile(url)
                : await getBytes(source.keyUrl, { dispatcher: io.dispatcher, maxBytes: 4 << 20 });
        sources.push({ data, name: `source.keyUrl (${source.keyUrl})` });
        parts.push(`url ${sha256(data)}`);
    }
    if (source.keyring) {
        let data: Buffer | undefined;
        try {
            data = fs.readFileSync(source.keyring);
        } catch {
            data = undefined;
        }
        // Unreadable: the loader reports it; a random part means nothing is remembered for it.
        sources.push(
            data === undefined
                ? { file: source.keyring }
                : { data, name: `keys[${sources.length}] (file ${source.keyring})` },
        );
        parts.push(`file ${data === undefined ? randomUUID() : sha256(data)}`);
    }
    if (sources.length === 0) {
        if (source.allowUnsigned) {
            return undefined;
        }
        throw invalidArgument(
            "source.key",
            "give the upstream's public key (key, keyUrl or keyring), or set allowUnsigned: true",
        );
    }
    return { sources, id: sha256(parts.join("\n")), pins };
}

/** A verified upstream Release and the components and architectures to read from it. */
interface UpstreamHead {
    release: FetchedRelease;
    components: string[];
    architectures: string[];
    source: AptSourceSpec;
}

/** Fetches and verifies the upstream Release and checks the components and architectures asked for. */
async function fetchUpstreamHead(source: AptSourceSpec, io: IoOptions): Promise<UpstreamHead> {
    const material = await keyMaterial(source, io);
    let seen: VerificationKeys | undefined;
    // The keys are parsed only when a signature is actually checked (not for a Release verified
    // with the same keys in the last day: see fetchRelease's verifiedMemo).
    let release: FetchedRelease;
    try {
        release = await fetchRelease({
            url: source.url,
            distribution: source.distribution,
            keys:
                material === undefined
                    ? undefined
                    : async () => {
                          const loaded = await loadPublicKeys(material.sources, { dispatcher: io.dispatcher });
                          seen = loaded;
                          return material.pins === undefined ? loaded : pinKeys(loaded, material.pins);
                      },
            keysArgument: material?.pins === undefined ? undefined : "source.keyFingerprints",
            verifiedMemo:
                material === undefined || io.cacheDir === undefined
                    ? undefined
                    : { dir: io.cacheDir, keysId: material.id },
            allowUnsigned: source.allowUnsigned,
            dispatcher: io.dispatcher,
        });
    } catch (err) {
        // A signature by no listed key: say which keys were given and which are listed.
        if (material?.pins !== undefined && (err as AirgapError).argument === "source.keyFingerprints") {
            const message = (err as Error).message;
            const detail = message.includes("keys given") ? "" : `; ${describePins(seen, material.pins)}`;
            throw new AirgapError("ERR_VERIFICATION", `${message}${detail}`, {
                argument: "source.keyFingerprints",
                cause: err,
            });
        }
        throw err;
    }
    let checked: ReturnType<typeof checkRequest>;
    try {
        checked = checkRequest(release, source.components, source.architectures);
    } catch (err) {
        // checkRequest names `components[i]`; the caller's argument is `source.components[i]`.
        const argument = (err as AirgapError).argument;
        if (hasCode(err, "ERR_INVALID_ARGUMENT") && argument !== undefined) {
            throw invalidArgument(`source.${argument}`, problemOf(err, argument), err);
        }
        throw err;
    }
    return { release, components: [...checked.components], architectures: [...checked.architectures], source };
}

/**
 * Reads the package indexes a verified Release lists (through the cache when given). With
 * `names`, the packages of other names are left out.
 */
async function readUpstream(head: UpstreamHead, io: IoOptions, names?: ReadonlySet<string>): Promise<Upstream> {
    const indexes = await fetchPackageIndexes({
        release: head.release,
        components: head.components,
        architectures: head.architectures,
        cacheDir: io.cacheDir,
        dispatcher: io.dispatcher,
        ...(names === undefined ? {} : { keepStanza: (stanza: Stanza) => names.has(stanza.get("Package") ?? "") }),
    });
    pruneCacheDir(io);
    return { ...head, packages: indexes.packages };
}

/** Drops cache entries unused for two weeks; a cache that cannot be pruned is left as it is. */
function pruneCacheDir(io: IoOptions): void {
    if (io.cacheDir !== undefined) {
        try {
            pruneCaches(io.cacheDir);
        } catch {
            // Pruning is housekeeping: it never fails a run.
        }
    }
}

/** Fetches and verifies the upstream Release and reads its package indexes. */
export async function fetchUpstream(source: AptSourceSpec, io: IoOptions = {}): Promise<Upstream> {
    return readUpstream(await fetchUpstreamHead(source, io), io);
}

/** The lock of a set of records. */
export function lockOf(records: readonly PackageRecord[]): AptLock {
    const lock: Record<string, string[]> = {};
    for (const r of records) {
        const key = `${r.name}/${r.architecture}`;
        const versions = lock[key] ?? [];
        lock[key] = versions;
        if (!versions.includes(r.version)) {
            versions.push(r.version);
        }
    }
    return Object.fromEntries(
        Object.keys(lock)
            .sort()
            .map((k) => [k, lock[k].sort().join(" ")]),
    );
}

export interface ResolveLockOptions extends IoOptions {
    source: AptSourceSpec;
    /** aptly package queries, OR'ed. */
    queries: string[];
    withDeps?: boolean;
    followRecommends?: boolean;
    /** Other sources whose packages may satisfy dependencies (`external.ts`). */
    dependencies?: AptDependencySpec[];
}

/** A source named by `dependencies.from`, with the lock of the AptMirror that mirrors it (if any). */
export interface AptDependencySpec extends DependencySourceSpec {
    source: AptSourceSpec;
}

/**
 * Resolves the queries against the verified upstream indexes. With `cacheDir`, a resolution of
 * the same signed Release with the same queries and options is read back instead of computed
 * (`stamp.ts`); `upstream` is then absent, as the indexes were not read. `release` is the
 * verified Release either way.
 */
export async function resolveLock(
    options: ResolveLockOptions,
): Promise<{ lock: AptLock; external?: AptLock; release: FetchedRelease; upstream?: Upstream }> {
    if (!Array.isArray(options.queries) || options.queries.length === 0) {
        throw invalidArgument("packages", 'list at least one package query, e.g. "nginx" or "Priority (required)"');
    }
    const head = await fetchUpstreamHead(options.source, options);
    if ((options.dependencies ?? []).length > 0) {
        // Not cached as a lock: the answer depends on the other sources and their locks too.
        return resolveAcrossSources(head, options);
    }
    const key = {
        releaseText: head.release.text,
        components: head.components,
        architectures: head.architectures,
        queries: options.queries,
        withDeps: options.withDeps ?? APT_DEFAULTS.withDeps,
        followRecommends: options.followRecommends ?? APT_DEFAULTS.followRecommends,
    };
    const cached = options.cacheDir === undefined ? undefined : readCachedLock(options.cacheDir, key);
    if (cached !== undefined) {
        return { lock: cached, release: head.release };
    }
    const upstream = await readUpstream(head, options);
    const result = resolve({
        packages: upstream.packages,
        queries: options.queries,
        architectures: upstream.architectures,
        withDeps: key.withDeps,
        followRecommends: key.followRecommends,
        origin: `${head.release.suiteUrl} ${head.components.join(" ")}`,
    });
    const lock = lockOf(result.packages);
    if (options.cacheDir !== undefined) {
        try {
            writeCachedLock(options.cacheDir, key, lock);
        } catch {
            // A cache that cannot be written costs the next run a resolve, nothing else.
        }
    }
    return { lock, release: head.release, upstream };
}

async function resolveAcrossSources(
    head: UpstreamHead,
    options: ResolveLockOptions,
): Promise<{ lock: AptLock; external: AptLock; release: FetchedRelease; upstream: Upstream }> {
    const upstream = await readUpstream(head, options);
    const dependencies: FetchedDependency[] = [];
    for (const dep of options.dependencies ?? []) {
        let fetched: Upstream;
        try {
            fetched = await fetchUpstream(dep.source, options);
        } catch (err) {
            throw new AirgapError(
                (err as AirgapError).code ?? "ERR_NETWORK",
                `${dep.argument}: ${dep.mirror ?? dep.source.url}: ${(err as Error).message}`,
                { argument: dep.argument, cause: err },
            );
        }
        dependencies.push({
            ...dep,
            packages: fetched.packages,
            architectures: fetched.architectures,
            url: dep.source.url,
            distribution: dep.source.distribution,
            origin: `${fetched.release.suiteUrl} ${fetched.components.join(" ")}`,
        });
    }
    const result = resolveAcross({
        packages: upstream.packages,
        queries: options.queries,
        architectures: upstream.architectures,
        withDeps: options.withDeps ?? APT_DEFAULTS.withDeps,
        followRecommends: options.followRecommends ?? APT_DEFAULTS.followRecommends,
        origin: `${head.release.suiteUrl} ${head.components.join(" ")}`,
        dependencies,
    });
    return { lock: lockOf(result.packages), external: result.external, release: head.release, upstream };
}

/**
 * The lock as a program resolves it, preview included: on an update the indexes are cached in
 * the mirror's state directory (with its other engine state); a preview writes nothing there,
 * so its cache is in a directory of the system's temporary directory private to the user.
 */
export async function resolveProgramLock(
    options: Omit<ResolveLockOptions, "cacheDir"> & {
        publish: Pick<AptPublishSpec, "root" | "stateDir">;
        dryRun: boolean;
    },
): Promise<AptProgramLock> {
    const { publish, dryRun, ...rest } = options;
    const cacheable = !dryRun && fs.existsSync(publish.root) && stateDirProblem(publish) === undefined;
    if (cacheable) {
        adoptLegacyStateDir(publish);
    }
    const cacheDir = cacheable ? indexCacheDir(publish) : privateTempDir("pulumi-airgap-indexes");
    const { lock, external, release } = await resolveLock({ ...rest, cacheDir });
    const date = release.release.date;
    return {
        packages: lock,
        ...(external === undefined ? {} : { external }),
        ...(date === undefined ? {} : { upstreamDate: date.toISOString() }),
    };
}

/** The package names of a lock (its keys are `<name>/<architecture>`). */
function lockedNames(lock: AptLock): Set<string> {
    return new Set(Object.keys(lock).map((key) => key.slice(0, key.lastIndexOf("/"))));
}

/** The upstream records the lock names. Throws naming every locked package upstream no longer has. */
export function selectLocked(upstream: Upstream, lock: AptLock): PackageRecord[] {
    const wanted = new Map<string, Set<string>>();
    for (const [key, versions] of Object.entries(lock)) {
        wanted.set(key, new Set(versions.split(" ")));
    }
    const selected: PackageRecord[] = [];
    const found = new Set<string>();
    for (const r of upstream.packages) {
        const key = `${r.name}/${r.architecture}`;
        if (wanted.get(key)?.has(r.version) && !found.has(`${key}=${r.version}`)) {
            found.add(`${key}=${r.version}`);
            selected.push(r);
        }
    }
    const missing = [...wanted].flatMap(([key, versions]) =>
        [...versions].filter((v) => !found.has(`${key}=${v}`)).map((v) => `${key} ${v}`),
    );
    if (missing.length > 0) {
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `packages: ${upstream.release.suiteUrl} no longer has ${missing.join(", ")}; run preview again to re-resolve (or update the lock file)`,
            { argument: "packages" },
        );
    }
    return selected;
}

export interface SyncOptions extends IoOptions {
    /** Download progress, every `progressIntervalMs` and once at the end of the downloads. */
    onProgress?: (p: DownloadProgress) => void;
    /** Defaults to `PROGRESS_INTERVAL_MS` (5 s). */
    progressIntervalMs?: number;
    /** A line when a step that takes a while begins or ends (publishing), e.g. to stderr. */
    log?: (line: string) => void;
    hooks?: PublishHooks;
    /**
     * The upstream as `resolveLock` (or `fetchUpstream`) just fetched it, verified. Used instead
     * of fetching again when it was fetched for the same source; ignored otherwise.
     */
    upstream?: Upstream;
    /** The time of the published Release's `Date` (and `Valid-Until`). Defaults to now. */
    now?: Date;
    /**
     * How long to wait for another sync or destroy of the same prefix (another `pulumi up`, or
     * another resource publishing a suite under it). Defaults to an hour: a first sync of a large
     * archive takes that long; the wait ends early when the holder dies.
     */
    lockTimeoutMs?: number;
}

/**
 * Downloads what the lock names and publishes it, atomically, holding the repository's lock from
 * the first download to the last collected file: a second sync of the same prefix (another
 * `pulumi up`, another resource) waits for it, then fails naming the holder, rather than collect
 * the files this one is about to publish.
 */
export async function syncMirror(spec: AptMirrorSpec, options: SyncOptions = {}): Promise<AptMirrorState> {
    adoptLegacyState(spec);
    const lock = await takeLock(mirrorLockFile(spec), options.lockTimeoutMs ?? MIRROR_LOCK_TIMEOUT_MS);
    try {
        return await syncLocked(spec, options);
    } finally {
        await lock.release();
    }
}

const MIRROR_LOCK_TIMEOUT_MS = 3_600_000;

async function syncLocked(spec: AptMirrorSpec, options: SyncOptions): Promise<AptMirrorState> {
    const { source, publish } = spec;
    const hashMemo = await HashMemo.load(hashMemoFile(spec));
    const distribution = publish.distribution ?? source.distribution;
    const repoDir = repoDirOf(publish.root, publish.prefix);
    const stamp = suiteStampFile(spec);
    const inputs = syncInputsDigest({ ...spec, optional: optionalIndexesInputs(spec) });
    const now = options.now ?? new Date();
    const validFor = publish.validFor === undefined ? undefined : validForMs(publish.validFor);
    // As the Release writes it: to the second.
    const validUntil =
        validFor === undefined ? undefined : new Date(Math.floor((now.getTime() + validFor) / 1000) * 1000);
    const unchanged = await readStampIfIntact<StampedState>({
        file: stamp,
        inputs,
        repoDir,
        distribution,
        memo: hashMemo,
    });
    // With publish.validFor, a Release past half its validity is signed again.
    if (unchanged !== undefined && !renewalDue(unchanged.validUntil, validFor, now)) {
        await hashMemo.save();
        return { ...spec, ...unchanged };
    }
    const io = { ...options, cacheDir: options.cacheDir ?? indexCacheDir(publish) };
    const fetched =
        options.upstream?.source !== undefined && sameSource(options.upstream.source, source)
            ? options.upstream
            : await fetchUpstreamHead(source, io);
    // The lock was checked against the last sync's date (operations' check); the Release
    // fetched now must not be older than the one the lock was resolved from.
    const syncedDate = fetched.release.release.date?.toISOString();
    const replayed = downgradeProblem(
        spec,
        { ...spec, upstreamDate: syncedDate },
        { now: "fetched for this sync", before: "the one the lock was resolved from" },
    );
    if (replayed !== undefined) {
        throw new AirgapError("ERR_VERIFICATION", `allowDowngrade: ${replayed}`, { argument: "allowDowngrade" });
    }
    // Only the packages of the names the lock has: selectLocked picks the versions among them.
    const upstream = "packages" in fetched ? fetched : await readUpstream(fetched, io, lockedNames(spec.packages));
    const records = selectLocked(upstream, spec.packages);
    const downloads = downloadDir(spec);
    // First: an upstream without the optional indexes asked for fails before any download.
    const optional = await prepareOptionalIndexes(spec, upstream, records, {
        downloads,
        nameOf: downloadName,
        concurrency: spec.concurrency ?? 8,
        cacheDir: io.cacheDir,
        dispatcher: options.dispatcher,
        onProgress: options.onProgress,
        hashMemo,
    });
    const publishOptions: PublishOptions = {
        ...optional.publish,
        root: publish.root,
        prefix: publish.prefix,
        distribution,
        codename: publish.distribution ?? upstream.release.release.codename ?? source.distribution,
        origin: publish.origin,
        label: publish.label,
        description: publish.description,
        components: upstream.components,
        architectures: upstream.architectures,
        packages: records.map((record) => ({ record, file: path.join(downloads, downloadName(record)) })),
        signing: spec.signing,
        allowUnsigned: spec.allowUnsigned,
        compressors: [xzIndexCompressor],
        hooks: options.hooks,
        hashMemo,
        date: now,
        validUntil,
        // A re-sync that changes nothing keeps the current generation (drift is still repaired).
        skipIfUnchanged: true,
    };
    // The indexes depend on the records only: they are compressed while the packages download.
    // With nothing to download the publish may well change nothing, and then it compresses
    // nothing either: it builds them itself, after that check.
    const toDownload = records.some((record) => !fs.existsSync(path.join(downloads, downloadName(record))));
    const prepared = toDownload ? prepareIndexes(publishOptions) : undefined;
    await downloadPackages({
        baseUrl: upstream.release.url,
        packages: records,
        poolDir: downloads,
        targetOf: downloadName,
        concurrency: spec.concurrency ?? 8,
        dispatcher: options.dispatcher,
        onProgress: options.onProgress,
        progressIntervalMs: options.progressIntervalMs ?? PROGRESS_INTERVAL_MS,
        hashMemo,
    });
    const publishStarted = Date.now();
    options.log?.(`publishing ${records.length} packages under ${repoDir}`);
    const result = await publishRepo(publishOptions, prepared);
    collectDownloads(downloads, new Set([...records.map(downloadName), ...optional.keep]));
    const distDir = path.join(result.repoDir, "dists", result.distribution);
    const state: StampedState = {
        packages: lockOf(records),
        packageCount: records.length,
        bytes: records.reduce((n, r) => n + r.size, 0),
        releaseSha256: sha256File(path.join(distDir, "Release")) ?? "",
        publishedPath: result.repoDir,
        publicKey: result.publicKeyArmored,
        drift: [],
        ...(syncedDate === undefined ? {} : { syncedReleaseDate: syncedDate }),
        ...(validUntil === undefined ? {} : { validUntil: validUntil.toISOString() }),
    };
    await writeStamp({
        file: stamp,
        inputs,
        repoDir: result.repoDir,
        distribution: result.distribution,
        poolFiles: new Map([
            ...result.packages.map((p): [string, string] => [p.filename, p.sha256]),
            ...optional.poolFiles,
        ]),
        state,
        memo: hashMemo,
    });
    await hashMemo.save();
    options.log?.(`published ${records.length} packages in ${formatDuration(Date.now() - publishStarted)}`);
    return { ...spec, ...state };
}

/** What a sync adds to its inputs: kept in the stamp (no secret in it). */
type StampedState = Omit<AptMirrorState, keyof AptMirrorSpec> & { packages: AptLock };

/** Removes downloads the lock no longer names (after a successful publish only). */
function collectDownloads(dir: string, keep: ReadonlySet<string>): void {
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
            const r = path.join(rel, entry.name);
            if (entry.isDirectory()) {
                walk(r);
                try {
                    fs.rmdirSync(path.join(dir, r));
                } catch {
                    // Not empty: it still holds packages the lock names.
                }
            } else if (!keep.has(r)) {
                fs.rmSync(path.join(dir, r), { force: true });
            }
        }
    };
    if (fs.existsSync(dir)) {
        walk("");
    }
}

/**
 * What is actually published: the packages the indexes list and every problem found (missing
 * or altered files, a Release that does not verify with the mirror's key).
 */
export async function readMirror(state: AptMirrorState): Promise<AptMirrorState> {
    const { publish, source } = state;
    const distribution = publish.distribution ?? source.distribution;
    const published = await readPublished(publish.root, publish.prefix, distribution, {
        publicKey: state.publicKey || undefined,
        hashPoolFiles: true,
    });
    if (!published.exists) {
        return { ...state, packages: {}, packageCount: 0, bytes: 0, releaseSha256: "", drift: ["not published"] };
    }
    const releaseFile = path.join(published.repoDir, "dists", distribution, "Release");
    return {
        ...state,
        packages: lockOf(published.packages.map((p) => ({ ...p }) as unknown as PackageRecord)),
        packageCount: published.packages.length,
        bytes: published.packages.reduce((n, p) => n + p.size, 0),
        releaseSha256: sha256File(releaseFile) ?? "",
        drift: [
            ...published.problems.map((p) => `${p.kind}: ${p.path}: ${p.message}`),
            ...renewalDrift(state, releaseFile),
        ],
    };
}

/**
 * With `publish.validFor`, a published Release less than half its validity from `Valid-Until`
 * is drift, so the next update signs it again before clients refuse it.
 */
function renewalDrift(state: AptMirrorState, releaseFile: string, now = new Date()): string[] {
    if (state.publish.validFor === undefined) {
        return [];
    }
    let validUntil: Date | undefined;
    try {
        validUntil = parseRelease(fs.readFileSync(releaseFile, "utf8")).validUntil;
    } catch {
        return []; // an unreadable Release is already reported by readPublished
    }
    let period: number;
    try {
        period = validForMs(state.publish.validFor);
    } catch {
        return [];
    }
    return renewalDue(validUntil, period, now)
        ? [
              `expiring: dists/${state.publish.distribution ?? state.source.distribution}/Release: Valid-Until ${validUntil?.toISOString() ?? "absent"} is less than half of publish.validFor away: the next update signs it again`,
          ]
        : [];
}

/**
 * Removes this mirror's suite and its engine state: the pool files no other suite of the prefix
 * names, and the prefix itself once no suite is left; nothing else under the root.
 */
export async function removeMirror(
    state: Pick<AptMirrorState, "publish" | "source">,
    options: { lockTimeoutMs?: number } = {},
): Promise<void> {
    const { publish, source } = state;
    adoptLegacyState(state);
    const lock = await takeLock(mirrorLockFile(state), options.lockTimeoutMs ?? MIRROR_LOCK_TIMEOUT_MS);
    try {
        fs.rmSync(suiteStampFile(state), { force: true });
        await unpublish(publish.root, publish.prefix, { distribution: publish.distribution ?? source.distribution });
        // This suite's own engine state; the caches shared by every mirror of the state directory
        // (indexes, locks, verifications) stay, and are pruned by age.
        fs.rmSync(downloadDir(state), { recursive: true, force: true });
        fs.rmSync(hashMemoFile(state), { force: true });
    } finally {
        await lock.release();
    }
    removeEmptyStateDirs(publish);
}
