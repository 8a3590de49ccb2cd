/**
 * Copying images between any source and destination (`skopeo copy --all --preserve-digests`).
 *
 * Steps, for one image: get the top manifest (verified by the source) → for an index, get each
 * child → copy each single-image manifest's blobs (skipping those the destination has) → put the
 * manifest by digest → put the index last, under the tag. Manifests and indexes are put as the
 * exact bytes the source gave, so the destination digest is always the source digest; nothing is
 * ever re-serialized. A copy killed half-way leaves only verified blobs behind (destinations
 * commit a blob under its digest only after verifying it), and the next run skips them.
 *
 * Platform filter (`platforms`) on an index. Copying a subset of an index's children cannot keep
 * the index digest (the index bytes list every child), and writing a new index would give the
 * destination a digest the source does not have. So:
 * - when the selected children are all the children, the whole index is copied (as without a filter);
 * - otherwise only the selected child manifests are copied, by digest, and the index is NOT put;
 *   when exactly one platform is selected that child is also tagged (what `skopeo copy` without
 *   `--all` does). The result says so (`indexCopied: false`, `platformDigests`), so a caller that
 *   needs the index digest at the destination (mirror-by-digest-only clients pull by it) can tell.
 * A wanted platform that the index lacks is ERR_NOT_FOUND naming the platforms it has. A filter on
 * a single-image manifest is not checked against its config: the manifest is copied as it is.
 *
 * One file for the copy planner, as containers/image's copy/: the single-image and index paths
 * share the blob cache, the verifier and the progress counters of one run.
 */

import { Readable } from "node:stream";
import { AirgapError, invalidArgument, isAirgapError } from "../errors";
import {
    type Descriptor,
    formatPlatform,
    type ImageIndex,
    normalizePlatform,
    type ParsedManifest,
    parseManifest,
    referencedBlobs,
    selectPlatforms,
} from "./manifest";
import { familiarName } from "./reference";
import { formatImageLocation } from "./transports";
import type { BlobReader, ImageDestination, ImageLocation, ImageSource, ManifestBlob } from "./types";
import { forEachLimited, Limiter } from "../store/concurrency";

/** A snapshot of the work done so far, passed to `onProgress`. */
export interface CopyProgress {
    readonly images: { readonly done: number; readonly failed: number; readonly total: number };
    readonly blobs: { readonly copied: number; readonly skipped: number; readonly inFlight: number };
    readonly manifests: number;
    /** Blob bytes moved (read from sources and written to destinations). */
    readonly bytes: number;
    /** Average since the start, bytes per second. */
    readonly bytesPerSecond: number;
    readonly elapsedMs: number;
    /** True for the last call. */
    readonly done: boolean;
}

export interface CopyImageRequest {
    readonly source: ImageSource;
    readonly destination: ImageDestination;
    /**
     * The manifest or index to copy, by digest (e.g. a lock's pin). Defaults to what the source
     * location names (its digest, else its tag).
     */
    readonly digest?: string;
    /** The tag (or reference name) at the destination. Defaults to what the destination location names. */
    readonly tag?: string;
    /** "os/arch[/variant]" to copy from an index; all of them when absent. See the file comment. */
    readonly platforms?: readonly string[];
}

export interface CopyOptions {
    /** Blobs copied at the same time (across all images of `copyImages`). Defaults to 4. */
    readonly concurrency?: number;
    readonly onProgress?: (progress: CopyProgress) => void;
    /** Milliseconds between `onProgress` calls. Defaults to 1000. */
    readonly progressIntervalMs?: number;
    /**
     * Take a registry destination whose tag already names the image's digest as holding the whole
     * image, and copy nothing of it (skopeo sync's `OptimizeDestinationImageAlreadyExists`); the
     * result then counts no blob as skipped. Defaults to false: every blob is checked.
     */
    readonly skipTagged?: boolean;
}

export interface CopyImageOptions extends CopyImageRequest, CopyOptions {}

export interface CopyImageResult {
    /** The source location, as a string. */
    readonly source: string;
    /** Digest of the manifest or index copied (equal at the destination when `indexCopied`). */
    readonly sourceDigest: string;
    readonly mediaType: string;
    /** The destination location, as a string. */
    readonly destination: string;
    /**
     * The image at the destination by digest (e.g. "mirror:5000/org/app@sha256:..."; for layouts
     * "oci:/path@sha256:..."), when one manifest stands for what was copied: the top manifest, or the
     * single selected platform. Undefined when several platforms of an index were copied without it.
     */
    readonly destinationReference?: string;
    /** False when a platform filter left the index out (see the file comment). */
    readonly indexCopied: boolean;
    /** The tag given to the image at the destination, if any. */
    readonly tagged?: string;
    /** Every manifest put, children first. */
    readonly manifests: readonly string[];
    /**
     * What the copy created, as opposed to found there: the tag (absent or naming another
     * manifest before), the manifests and the blobs the destination did not hold. Present when the
     * destination can tell (`hasManifest`, `tagDigest`).
     */
    readonly created?: {
        readonly tag: boolean;
        readonly manifests: readonly string[];
        readonly blobs: readonly string[];
    };
    /** Every blob (layer, config) the copied manifests reference. */
    readonly blobs?: readonly string[];
    /** For an index: "os/arch[/variant]" → child digest, for the children copied. */
    readonly platformDigests?: Readonly<Record<string, string>>;
    /** Blob bytes moved for this image. */
    readonly bytes: number;
    readonly blobsCopied: number;
    /** Blobs the destination already had (or received from a concurrent copy, or mounted). */
    readonly blobsSkipped: number;
}

export type CopyImagesEntry =
    | { readonly ok: true; readonly result: CopyImageResult }
    | { readonly ok: false; readonly source: string; readonly destination: string; readonly error: unknown };

export interface CopyImagesOptions extends CopyOptions {
    /** Images copied at the same time. Defaults to 2. */
    readonly imageConcurrency?: number;
}

const MAX_INDEX_DEPTH = 4;
/**
 * An index listing more distinct child manifests than this is refused (ERR_TOO_LARGE). Real
 * multi-platform indexes list a few dozen; a child listed several times counts once.
 */
export const MAX_INDEX_CHILDREN = 1024;
/** Child manifests of one index fetched at the same time (their blobs share the run's limiter). */
const CHILD_CONCURRENCY = 4;

/**
 * A stream that asks the source for the blob only when first read, so a destination that
 * finds the blob present (or mounts it) and destroys the stream causes no download. Counts bytes.
 */
class LazyBlobStream extends Readable {
    public bytes = 0;
    private inner: Readable | undefined;
    private opening = false;

    constructor(
        private readonly open: () => Promise<BlobReader>,
        private readonly onBytes: (n: number) => void,
    ) {
        super();
    }

    override _read(): void {
        if (this.inner !== undefined) {
            this.inner.resume();
            return;
        }
        if (this.opening) {
            return;
        }
        this.opening = true;
        this.open().then(
            (reader) => {
                if (this.destroyed) {
                    reader.stream.destroy();
                    return;
                }
                const inner = reader.stream;
                this.inner = inner;
                inner.on("data", (chunk: Buffer) => {
                    this.bytes += chunk.length;
                    this.onBytes(chunk.length);
                    if (!this.push(chunk)) {
                        inner.pause();
                    }
                });
                inner.on("end", () => this.push(null));
                inner.on("error", (err) => this.destroy(err));
            },
            (err: unknown) => this.destroy(err as Error),
        );
    }

    override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
        this.inner?.destroy();
        callback(err);
    }
}

/** Shared state of one copy run: the blob limiter, in-flight blobs, counters and progress. */
class CopyRun {
    readonly limiter: Limiter;
    /** Blobs being copied, by store and digest: resolves to true when this run created the blob. */
    readonly inFlight = new Map<string, Promise<boolean>>();
    readonly started = Date.now();
    imagesDone = 0;
    imagesFailed = 0;
    blobsCopied = 0;
    blobsSkipped = 0;
    blobsActive = 0;
    manifests = 0;
    bytes = 0;
    private timer: NodeJS.Timeout | undefined;

    constructor(
        readonly imagesTotal: number,
        readonly options: CopyOptions,
    ) {
        const concurrency = options.concurrency ?? 4;
        if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
            throw invalidArgument("concurrency", `must be a positive integer, got ${concurrency}`);
        }
        this.limiter = new Limiter(concurrency);
        if (options.onProgress !== undefined) {
            this.timer = setInterval(() => this.report(false), options.progressIntervalMs ?? 1000);
            this.timer.unref();
        }
    }

    snapshot(done: boolean): CopyProgress {
        const elapsedMs = Date.now() - this.started;
        return {
            images: { done: this.imagesDone, failed: this.imagesFailed, total: this.imagesTotal },
            blobs: { copied: this.blobsCopied, skipped: this.blobsSkipped, inFlight: this.blobsActive },
            manifests: this.manifests,
            bytes: this.bytes,
            bytesPerSecond: elapsedMs > 0 ? Math.round((this.bytes * 1000) / elapsedMs) : 0,
            elapsedMs,
            done,
        };
    }

    private report(done: boolean): void {
        try {
            this.options.onProgress?.(this.snapshot(done));
        } catch {
            // A failing progress callback must not break the copy.
        }
    }

    finish(): void {
        if (this.timer !== undefined) {
            clearInterval(this.timer);
            this.timer = undefined;
        }
        this.report(true);
    }
}

/** Per-image counters. */
interface ImageStats {
    bytes: number;
    blobsCopied: number;
    blobsSkipped: number;
    manifests: string[];
    /** Manifests put that the destination did not hold before (when it can tell). */
    createdManifests: string[];
    /** Whether the tag was created; undefined when the destination cannot tell or no tag was put. */
    tagCreated?: boolean;
    blobs: Set<string>;
    createdBlobs: Set<string>;
}

/** A key naming the store a destination writes to, for deduplicating blobs in flight. */
function storeKey(location: ImageLocation): string {
    return location.transport === "docker"
        ? `docker://${location.reference.domain}/${location.reference.path}`
        : `${location.transport}:${location.path}`;
}

function describeDestination(location: ImageLocation, digest: string): string {
    return location.transport === "docker"
        ? `${familiarName(location.reference)}@${digest}`
        : `${location.transport}:${location.path}@${digest}`;
}

/** "index sha256:... of <source location>", for errors about an index's children. */
function indexName(req: CopyImageRequest, digest: string): string {
    return `index ${digest} of ${formatImageLocation(req.source.location)}`;
}

function platformName(d: Descriptor): string {
    return d.platform === undefined ? "unknown" : formatPlatform(normalizePlatform(d.platform));
}

async function copyBlob(run: CopyRun, req: CopyImageRequest, desc: Descriptor, stats: ImageStats): Promise<void> {
    stats.blobs.add(desc.digest);
    const key = `${storeKey(req.destination.location)} ${desc.digest}`;
    const pending = run.inFlight.get(key);
    if (pending !== undefined) {
        if (await pending) {
            stats.createdBlobs.add(desc.digest);
        }
        stats.blobsSkipped++;
        run.blobsSkipped++;
        return;
    }
    const work = run.limiter.run(async (): Promise<boolean> => {
        run.blobsActive++;
        try {
            if (await req.destination.hasBlob(desc.digest)) {
                stats.blobsSkipped++;
                run.blobsSkipped++;
                return false;
            }
            const stream = new LazyBlobStream(
                () => req.source.getBlob(desc.digest),
                (n) => {
                    stats.bytes += n;
                    run.bytes += n;
                },
            );
            await req.destination.putBlob(stream, { digest: desc.digest, size: desc.size });
            if (stream.bytes === 0 && desc.size > 0) {
                stats.blobsSkipped++;
                run.blobsSkipped++;
                return false;
            }
            stats.blobsCopied++;
            run.blobsCopied++;
            return true;
        } catch (cause) {
            if (isAirgapError(cause)) {
                throw cause;
            }
            throw new AirgapError("ERR_IO", `copying blob ${desc.digest}`, { cause });
        } finally {
            run.blobsActive--;
        }
    });
    run.inFlight.set(key, work);
    try {
        if (await work) {
            stats.createdBlobs.add(desc.digest);
        }
    } finally {
        run.inFlight.delete(key);
    }
}

/** Gets a child manifest and checks it against its descriptor. */
async function getChild(
    source: ImageSource,
    desc: Descriptor,
): Promise<{ blob: ManifestBlob; parsed: ParsedManifest }> {
    const blob = await source.getManifest(desc.digest);
    if (blob.bytes.length !== desc.size) {
        throw new AirgapError(
            "ERR_VERIFICATION",
            `manifest ${desc.digest}: the index says ${desc.size} bytes, the source has ${blob.bytes.length}`,
        );
    }
    return { blob, parsed: parseManifest(blob.bytes, blob.mediaType) };
}

/**
 * Copies a manifest or index and everything below it. `name` "digest" puts it by digest only;
 * otherwise it is put under that tag, or, when undefined, named as the destination location says.
 */
async function copyTree(
    run: CopyRun,
    req: CopyImageRequest,
    blob: ManifestBlob,
    parsed: ParsedManifest,
    name: { readonly tag?: string } | "digest",
    stats: ImageStats,
    depth: number,
): Promise<string> {
    if (parsed.kind === "index") {
        if (depth >= MAX_INDEX_DEPTH) {
            throw new AirgapError(
                "ERR_PARSE",
                `index ${blob.digest}: indexes nested more than ${MAX_INDEX_DEPTH} deep`,
            );
        }
        await copyChildren(run, req, parsed.manifests, stats, depth, indexName(req, blob.digest));
    } else {
        await Promise.all(referencedBlobs(parsed).map((d) => copyBlob(run, req, d, stats)));
    }
    const dest = req.destination;
    const existed = dest.hasManifest === undefined ? undefined : await dest.hasManifest(blob.digest);
    const tag = name === "digest" ? undefined : (name.tag ?? destinationTag(req));
    const tagged = tag === undefined || dest.tagDigest === undefined ? undefined : await dest.tagDigest(tag);
    const digest = await dest.putManifest(blob.bytes, blob.mediaType, name === "digest" ? blob.digest : name.tag);
    if (digest !== blob.digest) {
        throw new AirgapError(
            "ERR_VERIFICATION",
            `manifest ${blob.digest}: the destination stored it as ${digest}; digests must be preserved`,
        );
    }
    stats.manifests.push(digest);
    if (existed === false) {
        stats.createdManifests.push(digest);
    }
    if (tag !== undefined && dest.tagDigest !== undefined) {
        stats.tagCreated = tagged !== digest;
    }
    run.manifests++;
    return digest;
}

/**
 * The children of an index, each digest once (in the order first listed). A digest listed with two
 * sizes is ERR_VERIFICATION; more than `MAX_INDEX_CHILDREN` distinct children is ERR_TOO_LARGE.
 * `what` names the index for errors.
 */
export function distinctChildren(children: readonly Descriptor[], what: string): Descriptor[] {
    const byDigest = new Map<string, Descriptor>();
    for (const d of children) {
        const seen = byDigest.get(d.digest);
        if (seen === undefined) {
            if (byDigest.size >= MAX_INDEX_CHILDREN) {
                throw new AirgapError(
                    "ERR_TOO_LARGE",
                    `${what} lists more distinct child manifests than the ${MAX_INDEX_CHILDREN} allowed`,
                );
            }
            byDigest.set(d.digest, d);
        } else if (seen.size !== d.size) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${what} lists manifest ${d.digest} with two sizes (${seen.size} and ${d.size} bytes)`,
            );
        }
    }
    return [...byDigest.values()];
}

/**
 * Copies the children of an index, each digest once, `CHILD_CONCURRENCY` at a time. Every child
 * started is let finish; the first failure is then thrown and no further child is started.
 */
async function copyChildren(
    run: CopyRun,
    req: CopyImageRequest,
    children: readonly Descriptor[],
    stats: ImageStats,
    depth: number,
    what: string,
): Promise<void> {
    const distinct = distinctChildren(children, what);
    const stop = new AbortController();
    let failure: { error: unknown } | undefined;
    await forEachLimited(
        distinct,
        CHILD_CONCURRENCY,
        async (d) => {
            try {
                const child = await getChild(req.source, d);
                await copyTree(run, req, child.blob, child.parsed, "digest", stats, depth + 1);
            } catch (error) {
                failure ??= { error };
                stop.abort();
            }
        },
        { signal: stop.signal },
    );
    if (failure !== undefined) {
        throw failure.error;
    }
}

/** The name the top manifest gets at the destination (what `putManifest` does without a tag). */
function destinationTag(req: CopyImageRequest): string | undefined {
    if (req.tag !== undefined) {
        return req.tag;
    }
    const loc = req.destination.location;
    if (loc.transport === "docker") {
        return loc.reference.tag ?? (loc.reference.digest === undefined ? "latest" : undefined);
    }
    return loc.reference;
}

async function copyOne(run: CopyRun, req: CopyImageRequest): Promise<CopyImageResult> {
    const stats: ImageStats = {
        bytes: 0,
        blobsCopied: 0,
        blobsSkipped: 0,
        manifests: [],
        createdManifests: [],
        blobs: new Set(),
        createdBlobs: new Set(),
    };
    const source = formatImageLocation(req.source.location);
    const destination = formatImageLocation(req.destination.location);
    const top = await req.source.getManifest(req.digest);
    const parsed = parseManifest(top.bytes, top.mediaType);
    const tag = destinationTag(req);
    const base = { source, sourceDigest: top.digest, mediaType: top.mediaType, destination };
    const platforms = req.platforms;
    if (parsed.kind === "index" && platforms !== undefined && platforms.length > 0) {
        const { selected, missing } = selectPlatforms(parsed, platforms);
        if (missing.length > 0) {
            throw new AirgapError(
                "ERR_NOT_FOUND",
                `${source} (${top.digest}) has no image for ${missing.join(", ")}; it has ${availablePlatforms(parsed)}`,
            );
        }
        const selectedDigests = new Set(selected.map((d) => d.digest));
        const whole = parsed.manifests.every((d) => selectedDigests.has(d.digest));
        if (!whole) {
            const platformDigests: Record<string, string> = {};
            for (const d of selected) {
                platformDigests[platformName(d)] = d.digest;
            }
            const single = selected.length === 1 ? selected[0]! : undefined;
            if (single === undefined) {
                await copyChildren(run, req, selected, stats, 0, indexName(req, top.digest));
            } else {
                const child = await getChild(req.source, single);
                // A docker destination named by digest (the index's) cannot take the child under that name.
                const name =
                    req.destination.location.transport === "docker" && tag === undefined ? "digest" : { tag: req.tag };
                await copyTree(run, req, child.blob, child.parsed, name, stats, 1);
            }
            return {
                ...base,
                ...(single === undefined
                    ? {}
                    : { destinationReference: describeDestination(req.destination.location, single.digest) }),
                indexCopied: false,
                ...(single !== undefined && tag !== undefined ? { tagged: tag } : {}),
                manifests: stats.manifests,
                ...createdOf(req, stats),
                platformDigests,
                bytes: stats.bytes,
                blobsCopied: stats.blobsCopied,
                blobsSkipped: stats.blobsSkipped,
            };
        }
    }
    const present = run.options.skipTagged === true ? await alreadyTagged(req, top, parsed, tag) : undefined;
    if (present !== undefined) {
        return { ...base, ...present };
    }
    const digest = await copyTree(run, req, top, parsed, { tag: req.tag }, stats, 0);
    let platformDigests: Record<string, string> | undefined;
    if (parsed.kind === "index") {
        platformDigests = {};
        for (const d of parsed.manifests) {
            platformDigests[platformName(d)] ??= d.digest;
        }
    }
    return {
        ...base,
        destinationReference: describeDestination(req.destination.location, digest),
        indexCopied: true,
        ...(tag === undefined ? {} : { tagged: tag }),
        manifests: stats.manifests,
        ...createdOf(req, stats),
        ...(platformDigests === undefined ? {} : { platformDigests }),
        bytes: stats.bytes,
        blobsCopied: stats.blobsCopied,
        blobsSkipped: stats.blobsSkipped,
    };
}

/**
 * A registry destination whose tag already names the image's top manifest holds the whole image:
 * a registry accepts a manifest only once it holds every blob it references, and an index only
 * once it holds its children (`skopeo sync` relies on the same). Then nothing is read or written
 * beyond that one lookup, and the result says nothing was created. Undefined otherwise (other
 * destinations, the tag missing or naming something else, an index of indexes).
 */
async function alreadyTagged(
    req: CopyImageRequest,
    top: ManifestBlob,
    parsed: ParsedManifest,
    tag: string | undefined,
): Promise<Omit<CopyImageResult, "source" | "sourceDigest" | "mediaType" | "destination"> | undefined> {
    const dest = req.destination;
    if (dest.location.transport !== "docker" || tag === undefined || dest.tagDigest === undefined) {
        return undefined;
    }
    let children: Descriptor[] = [];
    if (parsed.kind === "index") {
        children = distinctChildren(parsed.manifests, indexName(req, top.digest));
        if (children.some((d) => /index|manifest\.list/.test(d.mediaType))) {
            return undefined;
        }
    }
    if ((await dest.tagDigest(tag)) !== top.digest) {
        return undefined;
    }
    const platformDigests: Record<string, string> = {};
    for (const d of children) {
        platformDigests[platformName(d)] ??= d.digest;
    }
    return {
        destinationReference: describeDestination(dest.location, top.digest),
        indexCopied: true,
        tagged: tag,
        manifests: [...children.map((d) => d.digest), top.digest],
        ...(dest.hasManifest === undefined ? {} : { created: { tag: false, manifests: [], blobs: [] } }),
        ...(parsed.kind === "index" ? { platformDigests } : {}),
        bytes: 0,
        blobsCopied: 0,
        blobsSkipped: 0,
    };
}

/** The result's `created` and `blobs`, when the destination can tell what was there. */
function createdOf(req: CopyImageRequest, stats: ImageStats): Pick<CopyImageResult, "created" | "blobs"> {
    const blobs = [...stats.blobs].sort();
    if (req.destination.hasManifest === undefined) {
        return { blobs };
    }
    return {
        created: {
            tag: stats.tagCreated ?? false,
            manifests: stats.createdManifests,
            blobs: blobs.filter((b) => stats.createdBlobs.has(b)),
        },
        blobs,
    };
}

function availablePlatforms(index: ImageIndex): string {
    const names = [...new Set(index.manifests.filter((d) => d.platform !== undefined).map(platformName))];
    return names.length === 0 ? "no platform entries" : names.join(", ");
}

/**
 * Copies one image (a manifest, or an index with every child). The caller opens source and
 * destination and commits and closes them afterwards (an archive destination can then take
 * several images before its single commit).
 */
export async function copyImage(options: CopyImageOptions): Promise<CopyImageResult> {
    const run = new CopyRun(1, options);
    try {
        const result = await copyOne(run, options);
        run.imagesDone++;
        return result;
    } catch (err) {
        run.imagesFailed++;
        throw err;
    } finally {
        run.finish();
    }
}

/**
 * Copies several images, `imageConcurrency` at a time, with one blob limiter for all, and
 * blobs shared by images going to the same destination store copied once. One image failing does
 * not stop the others; each entry says how its image went, in the order of `requests`.
 */
export async function copyImages(
    requests: readonly CopyImageRequest[],
    options: CopyImagesOptions = {},
): Promise<CopyImagesEntry[]> {
    const imageConcurrency = options.imageConcurrency ?? 2;
    if (!Number.isSafeInteger(imageConcurrency) || imageConcurrency < 1) {
        throw invalidArgument("imageConcurrency", `must be a positive integer, got ${imageConcurrency}`);
    }
    const run = new CopyRun(requests.length, options);
    const images = new Limiter(imageConcurrency);
    try {
        return await Promise.all(
            requests.map((req) =>
                images.run(async (): Promise<CopyImagesEntry> => {
                    try {
                        const result = await copyOne(run, req);
                        run.imagesDone++;
                        return { ok: true, result };
                    } catch (error) {
                        run.imagesFailed++;
                        return {
                            ok: false,
                            source: formatImageLocation(req.source.location),
                            destination: formatImageLocation(req.destination.location),
                            error,
                        };
                    }
                }),
            ),
        );
    } finally {
        run.finish();
    }
}
