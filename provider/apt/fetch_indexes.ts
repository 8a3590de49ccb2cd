/**
 * fetchPackageIndexes: the Packages indexes a verified Release lists, checked against its signed
 * hashes before they are decompressed or parsed, cached by hash, and parsed in batches; and the
 * same for other control-file indexes (`fetchControlIndexes`: Sources, debian-installer).
 *
 * Longer than most files here: verifying, caching and parsing an index is one path, kept
 * together so that no index is parsed by a route that skips a check.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { AirgapError, hasCode, invalidArgument, isAirgapError, parseError } from "../errors";
import { type HttpOptions, joinUrl } from "../http/client";
import { canDecompress, type Decompression, decompress } from "../http/decompress";
import { downloadToFile } from "../http/download";
import { IndexCache } from "./cache";
import { parseStanzas, toPackageRecord } from "./control";
import { type Compression, type IndexCandidate, indexCandidates, lookupIndex, type Release } from "./release";
import type { PackageRecord, Stanza } from "./types";
import type { FetchedRelease } from "./fetch_release";

export interface FetchIndexesOptions extends HttpOptions {
    /** The verified Release (from `fetchRelease`). */
    readonly release: FetchedRelease;
    /** Checked with `checkRequest`. */
    readonly components: readonly string[];
    readonly architectures: readonly string[];
    /** Also read `binary-all` when the Release lists it. Defaults to true. */
    readonly includeAll?: boolean;
    /** Where to keep indexes between runs (see `cache.ts`). Without it, nothing is kept. */
    readonly cacheDir?: string;
    /**
     * Compressions to consider, most preferred first; those that cannot be decompressed here are
     * skipped. Defaults to `DEFAULT_INDEX_COMPRESSIONS`.
     */
    readonly compressions?: readonly Compression[];
    /** Called once per index, when it has been read. */
    readonly onIndex?: (report: IndexReport) => void;
    /**
     * Only stanzas for which this is true become records; the others are still read and their
     * index checked, but not made into records (a sync that needs a few thousand of a large
     * index's packages keeps less and collects less garbage). Defaults to every stanza.
     */
    readonly keepStanza?: (stanza: Stanza) => boolean;
}

/**
 * gzip first: on a 45 MB index, gunzip took 0.3 s against 3.3 s for xz in WebAssembly, while xz
 * saved 2 MB of 6.5 MB, which pays off only below about 0.7 MB/s. xz serves archives that offer
 * nothing else.
 */
export const DEFAULT_INDEX_COMPRESSIONS: readonly Compression[] = ["gz", "xz", "none"];

/**
 * The most an index may decompress to when the Release does not list its uncompressed size
 * (Debian's archive does list it; some repositories list only the compressed files). Debian's
 * largest Packages indexes are a few hundred MiB; more than this is refused as a decompression bomb.
 */
export const MAX_UNLISTED_INDEX_SIZE = 1024 * 1024 * 1024;

/** What happened to one index. */
export interface IndexReport {
    readonly component: string;
    readonly architecture: string;
    /** The variant used, relative to the suite directory, e.g. "main/binary-amd64/Packages.gz". */
    readonly path: string;
    /** Signed SHA256 of that variant: the cache key. */
    readonly sha256: string;
    /** "cache": nothing was downloaded. */
    readonly source: "cache" | "download";
    /** The URL downloaded from (by-hash or plain), when downloaded. */
    readonly url?: string;
    /** Download size in bytes (0 from cache). */
    readonly bytes: number;
    /** Records read from the index. */
    readonly packages: number;
}

export interface FetchedIndexes {
    /** Records of every index, each `name_version_arch` once (the first index listing it wins). */
    readonly packages: PackageRecord[];
    readonly indexes: readonly IndexReport[];
}

export interface IndexTarget {
    readonly component: string;
    /** "source" for a `Sources` index. */
    readonly architecture: string;
    /** Relative to the suite, without compression: "main/binary-amd64/Packages", "main/source/Sources". */
    readonly basePath: string;
}

/** Reads one stanza of an index into a record; throws ERR_PARSE for a malformed one. */
export type StanzaParser<T> = (stanza: Stanza, component: string) => T;

/**
 * Reads control-file indexes the verified Release lists (e.g. `Sources`, a debian-installer
 * `Packages`), each checked and cached as `fetchPackageIndexes` does, with `parse` for records.
 */
export async function fetchControlIndexes<T>(
    options: Omit<FetchIndexesOptions, "components" | "architectures" | "includeAll">,
    targets: readonly IndexTarget[],
    parse: StanzaParser<T>,
): Promise<{ records: T[]; indexes: IndexReport[] }> {
    const compressions = (options.compressions ?? DEFAULT_INDEX_COMPRESSIONS).filter((c) => canDecompress(c));
    const scratch = options.cacheDir === undefined ? await mkdtemp(join(tmpdir(), "airgap-indexes-")) : undefined;
    const cache = new IndexCache(options.cacheDir ?? (scratch as string));
    try {
        const records: T[] = [];
        const indexes: IndexReport[] = [];
        for (const target of targets) {
            const report = await readIndex(
                { ...options, components: [], architectures: [] },
                cache,
                target,
                compressions,
                (record) => records.push(record),
                parse,
            );
            indexes.push(report);
            options.onIndex?.(report);
        }
        return { records, indexes };
    } finally {
        if (scratch !== undefined) {
            await rm(scratch, { recursive: true, force: true });
        }
    }
}

/**
 * The directory (relative to the suite) of a component's indexes. Usually the component itself;
 * Debian's security archive names its components `updates/main` while listing the files under
 * `main/`, and apt finds them whichever of the two sources.list names: so do we.
 */
export function indexDirOf(release: Release, component: string, architectures: readonly string[]): string {
    const last = component.slice(component.lastIndexOf("/") + 1);
    const candidates = [component, last, ...release.components.filter((c) => c.endsWith(`/${last}`))];
    const listed = (dir: string) =>
        architectures.some((arch) => indexCandidates(release, `${dir}/binary-${arch}/Packages`).length > 0);
    return candidates.find(listed) ?? component;
}

/**
 * Whether apt reads `binary-all/Packages` of this Release: only when its `Architectures` names
 * `all` (or is absent) and `No-Support-for-Architecture-all` does not say `Packages` (then the
 * `all` packages are in every `binary-<arch>` index). Debian's security archive lists a
 * `binary-all` index without `all` in `Architectures`; apt never fetches it, and mirrors do not
 * keep it in step with the Release.
 */
function readsBinaryAll(release: Release): boolean {
    const noSupport = (release.stanza.get("No-Support-for-Architecture-all") ?? "").split(/\s+/);
    return (
        (release.architectures.length === 0 || release.architectures.includes("all")) && !noSupport.includes("Packages")
    );
}

/**
 * Reads the `Packages` indexes of the given components and architectures (plus `binary-all`
 * when listed and apt would read it): from the cache when an entry matches the signed hash, else
 * downloaded (by-hash when the Release offers it), checked, decompressed and cached. Records carry
 * their component.
 *
 * Throws `ERR_NOT_FOUND` when the Release lists no usable index for a component/architecture or
 * none of its variants can be downloaded, `ERR_VERIFICATION` when a download does not match the
 * signed size and hash, `ERR_PARSE` naming the index for a malformed or unsafe record (e.g. a
 * `Filename` with `..`).
 */
export async function fetchPackageIndexes(options: FetchIndexesOptions): Promise<FetchedIndexes> {
    const { release } = options;
    const compressions = (options.compressions ?? DEFAULT_INDEX_COMPRESSIONS).filter((c) => canDecompress(c));
    if (compressions.length === 0) {
        throw invalidArgument(
            "compressions",
            `none of ${(options.compressions ?? []).join(", ")} can be decompressed here`,
        );
    }
    const targets: IndexTarget[] = [];
    for (const component of options.components) {
        const dir = indexDirOf(release.release, component, options.architectures);
        const archs = [...options.architectures];
        if ((options.includeAll ?? true) && !archs.includes("all") && readsBinaryAll(release.release)) {
            if (indexCandidates(release.release, `${dir}/binary-all/Packages`).length > 0) {
                archs.push("all");
            }
        }
        for (const architecture of archs) {
            targets.push({ component, architecture, basePath: `${dir}/binary-${architecture}/Packages` });
        }
    }

    const scratch = options.cacheDir === undefined ? await mkdtemp(join(tmpdir(), "airgap-indexes-")) : undefined;
    const cache = new IndexCache(options.cacheDir ?? (scratch as string));
    try {
        const packages: PackageRecord[] = [];
        const seen = new Set<string>();
        const indexes: IndexReport[] = [];
        const keep = options.keepStanza;
        const parse =
            keep === undefined
                ? toPackageRecord
                : (stanza: Stanza, component: string) =>
                      keep(stanza) ? toPackageRecord(stanza, component) : undefined;
        for (const target of targets) {
            const report = await readIndex(
                options,
                cache,
                target,
                compressions,
                (record: PackageRecord) => {
                    const key = `${record.name}_${record.version}_${record.architecture}`;
                    if (!seen.has(key)) {
                        seen.add(key);
                        packages.push(record);
                    }
                },
                parse,
            );
            indexes.push(report);
            options.onIndex?.(report);
        }
        return { packages, indexes };
    } finally {
        if (scratch !== undefined) {
            await rm(scratch, { recursive: true, force: true });
        }
    }
}

function describeMissing(release: Release, target: IndexTarget, compressions: readonly Compression[]): string {
    const listed = release.files.filter((f) => f.path === target.basePath || f.path.startsWith(`${target.basePath}.`));
    if (listed.length === 0) {
        return `the Release lists no ${target.basePath} index`;
    }
    const weak = listed.filter((f) => f.sha256 === undefined).map((f) => f.path);
    const others = listed.filter((f) => f.sha256 !== undefined).map((f) => f.path);
    const parts: string[] = [];
    if (weak.length > 0) {
        parts.push(`${weak.join(", ")} listed without SHA256 (cannot be verified)`);
    }
    if (others.length > 0) {
        parts.push(`${others.join(", ")} in a compression not handled here (handled: ${compressions.join(", ")})`);
    }
    return `no usable ${target.basePath} index: ${parts.join("; ")}`;
}

async function readIndex<T = PackageRecord>(
    options: FetchIndexesOptions,
    cache: IndexCache,
    target: IndexTarget,
    compressions: readonly Compression[],
    add: (record: T) => void,
    /** Undefined for a stanza that is read but not kept. */
    parse: StanzaParser<T | undefined> = toPackageRecord as unknown as StanzaParser<T>,
): Promise<IndexReport> {
    const { release } = options;
    const candidates = indexCandidates(release.release, target.basePath, { compressions });
    if (candidates.length === 0) {
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `${release.suiteUrl}: ${describeMissing(release.release, target, compressions)} (component ${target.component}, architecture ${target.architecture})`,
        );
    }
    // The signed hash of the uncompressed index, to check cache entries against, and its size.
    const plainEntry = lookupIndex(release.release, target.basePath);
    const plain = plainEntry?.sha256;
    const limit = plainEntry === undefined ? undefined : { path: plainEntry.path, size: plainEntry.size };
    const base = { component: target.component, architecture: target.architecture };

    for (const candidate of candidates) {
        if (await cache.has(candidate.sha256)) {
            const count = await parseEntry(cache, candidate, target, plain, add, release.suiteUrl, parse);
            if (count !== undefined) {
                return {
                    ...base,
                    path: candidate.path,
                    sha256: candidate.sha256,
                    source: "cache",
                    bytes: 0,
                    packages: count,
                };
            }
        }
    }

    const tried: string[] = [];
    for (const candidate of candidates) {
        const urls = [joinUrl(release.suiteUrl, candidate.path)];
        if (candidate.byHashPath !== undefined) {
            // apt falls back from by-hash to the plain name, as mirrors may lag behind.
            urls.unshift(joinUrl(release.suiteUrl, candidate.byHashPath));
        }
        for (const url of urls) {
            const downloaded = await cache.tempPath(candidate.sha256);
            try {
                const result = await downloadToFile(url, downloaded, {
                    ...httpOptions(options),
                    expected: { size: candidate.size, sha256: candidate.sha256 },
                    tempPath: `${downloaded}.part`,
                });
                await storeDecompressed(cache, candidate, downloaded, plain, limit, url);
                const count = await parseEntry(cache, candidate, target, plain, add, release.suiteUrl, parse);
                if (count === undefined) {
                    throw new AirgapError("ERR_IO", `cache entry for ${url} vanished while reading it`);
                }
                return {
                    ...base,
                    path: candidate.path,
                    sha256: candidate.sha256,
                    source: "download",
                    url,
                    bytes: result.bytesReceived,
                    packages: count,
                };
            } catch (err) {
                if (!hasCode(err, "ERR_NOT_FOUND")) {
                    throw withContext(err, `index ${candidate.path} of ${release.suiteUrl}`);
                }
                tried.push(url);
            } finally {
                await rm(downloaded, { force: true });
                await rm(`${downloaded}.part`, { force: true });
            }
        }
    }
    throw new AirgapError(
        "ERR_NOT_FOUND",
        `index ${target.basePath} of ${release.suiteUrl} is listed in the Release but not served; tried ${tried.join(", ")}`,
    );
}

function httpOptions(options: HttpOptions): HttpOptions {
    const { dispatcher, retry, headers, signal, onRetry } = options;
    return { dispatcher, retry, headers, signal, onRetry };
}

function withContext(err: unknown, context: string): unknown {
    // parseEntry already adds the context readIndex adds again around it.
    if (isAirgapError(err) && !err.message.startsWith(`${context}: `)) {
        return new AirgapError(err.code, `${context}: ${err.message}`, { cause: err });
    }
    return err;
}

/** The error for an index that decompresses to more than it may. */
function decompressedTooLarge(
    candidate: IndexCandidate,
    url: string,
    plain: { path: string; size: number } | undefined,
): AirgapError {
    const what = `${candidate.path} (${url})`;
    return new AirgapError(
        "ERR_TOO_LARGE",
        plain === undefined
            ? `${what} decompresses to more than ${MAX_UNLISTED_INDEX_SIZE} bytes, the limit for an index whose uncompressed size the Release does not list`
            : `${what} decompresses to more than ${plain.size} bytes, the size the signed Release lists for ${plain.path}`,
    );
}

/**
 * Decompresses a verified download into the cache, checking the result against `plainSha256`
 * when listed. Decompression stops (ERR_TOO_LARGE, nothing cached) once the output passes the
 * signed size of the uncompressed index (`plain`), or `MAX_UNLISTED_INDEX_SIZE` when unlisted.
 */
async function storeDecompressed(
    cache: IndexCache,
    candidate: IndexCandidate,
    downloaded: string,
    plainSha256: string | undefined,
    plain: { path: string; size: number } | undefined,
    url: string,
): Promise<void> {
    const tmp = await cache.tempPath(candidate.sha256);
    const hash = createHash("sha256");
    try {
        const hasher = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
                hash.update(chunk);
                callback(null, chunk);
            },
        });
        try {
            await pipeline(
                decompress(createReadStream(downloaded), candidate.compression as Decompression, {
                    maxBytes: plain?.size ?? MAX_UNLISTED_INDEX_SIZE,
                    error: () => decompressedTooLarge(candidate, url, plain),
                }),
                hasher,
                createWriteStream(tmp),
            );
        } catch (cause) {
            if (hasCode(cause, "ERR_TOO_LARGE")) {
                throw cause;
            }
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${url}: cannot be decompressed (${candidate.compression}): ${(cause as Error).message}`,
                { cause },
            );
        }
        const actual = hash.digest("hex");
        if (plainSha256 !== undefined && actual !== plainSha256) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${url}: decompressed content does not match the signed SHA256 of the uncompressed index: expected ${plainSha256}, got ${actual}`,
            );
        }
        await cache.commit(candidate.sha256, tmp);
    } finally {
        await rm(tmp, { force: true });
    }
}

/**
 * Parses a cache entry, passing each record to `add` only once the whole entry is read and (when
 * the Release lists the uncompressed index) its hash checked. Returns the record count, or
 * undefined when the entry is missing or damaged (it is then removed).
 */
async function parseEntry<T>(
    cache: IndexCache,
    candidate: IndexCandidate,
    target: IndexTarget,
    plainSha256: string | undefined,
    add: (record: T) => void,
    suiteUrl: string,
    parse: StanzaParser<T | undefined>,
): Promise<number | undefined> {
    const stream = await cache.open(candidate.sha256);
    if (stream === undefined) {
        return undefined;
    }
    const hash = createHash("sha256");
    const hashed = (async function* () {
        for await (const chunk of stream) {
            hash.update(chunk as Buffer);
            yield chunk as Buffer;
        }
    })();
    const records: T[] = [];
    let count = 0;
    try {
        for await (const batch of stanzaBatches(hashed)) {
            for (const stanza of batch) {
                count++;
                const record = parse(stanza, target.component);
                if (record !== undefined) {
                    records.push(record);
                }
            }
        }
    } catch (cause) {
        stream.destroy();
        if (
            hasCode(cause, "ERR_PARSE") &&
            plainSha256 !== undefined &&
            !(await entryIntact(cache, candidate, plainSha256))
        ) {
            await cache.remove(candidate.sha256);
            return undefined;
        }
        throw withContext(cause, `index ${candidate.path} of ${suiteUrl}`);
    }
    if (plainSha256 !== undefined && hash.digest("hex") !== plainSha256) {
        await cache.remove(candidate.sha256);
        return undefined;
    }
    for (const record of records) {
        add(record);
    }
    return count;
}

/** Where the text after the last blank line starts (0 when there is none). */
function afterLastBlankLine(text: string): number {
    const lf = text.lastIndexOf("\n\n");
    const crlf = text.lastIndexOf("\n\r\n");
    return Math.max(lf < 0 ? 0 : lf + 2, crlf < 0 ? 0 : crlf + 3);
}

function countLines(text: string): number {
    let n = 0;
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) {
        n++;
    }
    return n;
}

/**
 * Parses a control file from a byte stream in batches: each batch is the text up to the last
 * blank line received so far, parsed at once with `parseStanzas`. Memory stays bounded by the
 * chunk size (a stanza never spans a blank line), and parsing runs without a promise per line,
 * which measured about twice as fast as line-by-line streaming on a 45 MB index.
 * `ERR_PARSE` line numbers are made absolute.
 */
export async function* stanzaBatches(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Stanza[]> {
    const decoder = new TextDecoder("utf-8");
    let pending = "";
    let linesBefore = 0;
    const parse = (text: string): Stanza[] => {
        try {
            return parseStanzas(text);
        } catch (err) {
            if (
                !isAirgapError(err) ||
                err.code !== "ERR_PARSE" ||
                err.line === undefined ||
                err.problem === undefined
            ) {
                throw err;
            }
            throw parseError(err.line + linesBefore, err.problem, err);
        }
    };
    for await (const chunk of chunks) {
        pending += decoder.decode(chunk, { stream: true });
        const cut = afterLastBlankLine(pending);
        if (cut > 0) {
            const text = pending.slice(0, cut);
            pending = pending.slice(cut);
            yield parse(text);
            linesBefore += countLines(text);
        }
    }
    pending += decoder.decode();
    if (pending !== "") {
        yield parse(pending);
    }
}

async function entryIntact(cache: IndexCache, candidate: IndexCandidate, plainSha256: string): Promise<boolean> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(cache.path(candidate.sha256))) {
        hash.update(chunk as Buffer);
    }
    return hash.digest("hex") === plainSha256;
}
