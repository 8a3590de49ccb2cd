/**
 * Images written as the storage tree of distribution's filesystem driver (Debian's
 * `docker-registry`, distribution 2.8, `storage.filesystem.rootdirectory`), so that the mirror VM's
 * registry serves them with the digests they had, without a registry running while the tree is
 * built.
 *
 * The layout below the root (distribution's `registry/storage/paths.go`):
 *
 *     docker/registry/v2/blobs/<alg>/<first 2 hex>/<hex>/data           every blob and manifest, by content
 *     docker/registry/v2/repositories/<name>/
 *         _layers/<alg>/<hex>/link                                      blobs (configs, layers) the repository may serve
 *         _manifests/revisions/<alg>/<hex>/link                         manifests the repository may serve by digest
 *         _manifests/tags/<tag>/current/link                            the manifest the tag names
 *         _manifests/tags/<tag>/index/<alg>/<hex>/link                  every manifest the tag has named
 *
 * A link file holds `<alg>:<hex>` without a newline. The registry serves a blob or manifest of a
 * repository only through its link, so the order of writing is what keeps a reader safe: blob
 * data first (each to a temporary file beside it, verified while streaming, then renamed), links
 * last, the tag after the manifests it names. An image whose content cannot be read whole gets no
 * link at all; blob data it left is verified content the registry never serves unlinked.
 *
 * The steps: `planRegistryStorage` (parse and check the inputs, open the sources, read every
 * manifest and child manifest: the sizes are known then) → `RegistryStoragePlan.write` (blobs,
 * manifests, links). `registryStorageSize` and `writeRegistryStorage` run them for one use.
 */

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, promises as fsp, type Stats } from "node:fs";
import * as path from "node:path";
import { AirgapError, hasCode, invalidArgument, isAirgapError } from "../errors";
import { type DigestAlgorithm, DigestVerifier, digestOf, isDigest, parseDigest } from "../oci/digest";
import { type Descriptor, parseManifest, referencedBlobs } from "../oci/manifest";
import { openImageSource } from "../oci/open";
import { fullName, parseDockerReference } from "../oci/reference";
import type { RegistryOptions } from "../oci/registry_transport";
import { parseImageLocation } from "../oci/transports";
import type { ImageLocation, ImageSource, ManifestBlob } from "../oci/types";
import { writeStreamAtomic } from "../store/atomic";

export interface StorageImage {
    /**
     * Where the image is now: an ImageMirror `mirrored` value or any transport reference, by
     * digest, e.g. "127.0.0.1:5000/quay.io/foo/bar@sha256:…" (a registry, the `docker://` prefix
     * optional), "oci:/srv/layout:quay.io/foo/bar:1.0@sha256:…", "oci-archive:/srv/x.tar:tag@sha256:…".
     * A digest written here MUST equal `digest`.
     */
    location: string;
    /** Repository name inside the VM registry, e.g. "quay.io/foo/bar". */
    repository: string;
    /** Tag to set, when the image had one. */
    tag?: string;
    /** The top manifest digest ("sha256:…"); what is read is checked against it. */
    digest: string;
}

export interface RegistryStorageResult {
    /** Distinct manifests (indexes, and the child manifests the sources hold) the images consist of. */
    manifests: number;
    /** Distinct blobs (configs, layers) the images consist of. */
    blobs: number;
    /** Bytes of those manifests and blobs, each counted once: what `registryStorageSize` reports. */
    bytes: number;
    /** Bytes actually written: blobs and manifests that were not already there with the right content. */
    bytesWritten: number;
}

export interface RegistryStorageOptions {
    /**
     * How to reach source registries: one set of options, or the options for a registry domain.
     * Defaults to HTTPS, verified, anonymous.
     */
    registry?: RegistryOptions | ((domain: string) => RegistryOptions);
    /** Stops the work: no new blob starts, blobs being written are discarded, nothing more is linked. */
    signal?: AbortSignal;
    /** Lines about what is done (an image stored, a child manifest the source lacks). Defaults to none. */
    log?: (line: string) => void;
    /** Blobs written at once. Defaults to 4. */
    concurrency?: number;
    /** Where `oci-archive:` sources are extracted while they are read. Defaults to the system temp dir. */
    tempDir?: string;
}

/** Where distribution's filesystem driver keeps everything, below `rootdirectory`. */
export const REGISTRY_V2_DIR = path.join("docker", "registry", "v2");

/**
 * distribution's repository names: path components of lower-case letters and digits joined by
 * ".", "_", "__" or dashes, separated by "/", 255 characters at most. (A name with a domain, as
 * `reference.NameRegexp` would also take, is refused: clients read its first component as a host.)
 */
const NAME_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const REPOSITORY_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const REPOSITORY_MAX = 255;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const TRAILING_DIGEST_RE = /@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;
/** Indexes nested deeper than this are refused (real images nest at most once). */
const MAX_INDEX_DEPTH = 4;

function digestPath(digest: string): string[] {
    const { algorithm, hex } = parseDigest(digest);
    return [algorithm, hex];
}

/** Paths of distribution's storage below `root` (its `rootdirectory`). */
export const registryStoragePaths = {
    blobData(root: string, digest: string): string {
        const [algorithm, hex] = digestPath(digest);
        return path.join(root, REGISTRY_V2_DIR, "blobs", algorithm!, hex!.slice(0, 2), hex!, "data");
    },
    repository(root: string, repository: string): string {
        return path.join(root, REGISTRY_V2_DIR, "repositories", ...repository.split("/"));
    },
    layerLink(root: string, repository: string, digest: string): string {
        return path.join(this.repository(root, repository), "_layers", ...digestPath(digest), "link");
    },
    revisionLink(root: string, repository: string, digest: string): string {
        return path.join(this.repository(root, repository), "_manifests", "revisions", ...digestPath(digest), "link");
    },
    tagDir(root: string, repository: string, tag: string): string {
        return path.join(this.repository(root, repository), "_manifests", "tags", tag);
    },
    tagCurrentLink(root: string, repository: string, tag: string): string {
        return path.join(this.tagDir(root, repository, tag), "current", "link");
    },
    tagIndexLink(root: string, repository: string, tag: string, digest: string): string {
        return path.join(this.tagDir(root, repository, tag), "index", ...digestPath(digest), "link");
    },
} as const;

/** A location of `StorageImage.location`, parsed: where to read, and the digest it names if any. */
export interface StorageSource {
    readonly location: ImageLocation;
    readonly digest?: string;
    /** The source to open for it: images of one repository, layout or archive share it. */
    readonly key: string;
}

/**
 * Parses `StorageImage.location`: `docker://`, `oci:` and `oci-archive:` locations, and bare
 * registry references ("host:port/repo@sha256:…", as ImageMirror's `mirrored` gives them). A
 * trailing "@<digest>" of a layout or archive location is the digest, not part of the reference
 * name. ERR_PARSE when it is none of these.
 */
export function parseStorageLocation(s: string): StorageSource {
    if (s.startsWith("oci:") || s.startsWith("oci-archive:")) {
        const m = TRAILING_DIGEST_RE.exec(s);
        const rest = m === null ? s : s.slice(0, m.index);
        const location = parseImageLocation(rest);
        if (location.transport === "docker") {
            throw new AirgapError("ERR_PARSE", `invalid image location "${s}"`);
        }
        return {
            location,
            ...(m === null ? {} : { digest: m[1]! }),
            key: `${location.transport}:${location.path}`,
        };
    }
    let location: ImageLocation;
    if (s.startsWith("docker://")) {
        location = parseImageLocation(s);
    } else {
        try {
            location = { transport: "docker", reference: parseDockerReference(s) };
        } catch (cause) {
            if (/^[A-Za-z][A-Za-z0-9-]*:/.test(s)) {
                // "dir:/x", "containers-storage:…": says which transports there are.
                parseImageLocation(s);
            }
            throw new AirgapError(
                "ERR_PARSE",
                `invalid image location "${s}": not a registry reference ("host[:port]/repo[:tag]@digest") ` +
                    `nor a "docker://", "oci:" or "oci-archive:" location (${(cause as Error).message})`,
                { cause },
            );
        }
    }
    if (location.transport !== "docker") {
        throw new AirgapError("ERR_PARSE", `invalid image location "${s}"`);
    }
    const ref = location.reference;
    return {
        location,
        ...(ref.digest === undefined ? {} : { digest: ref.digest }),
        key: `docker://${fullName(ref)}`,
    };
}

/** One image checked: its parsed source, where it goes, and what names it in messages. */
interface CheckedImage {
    readonly image: StorageImage;
    readonly source: StorageSource;
    /** "quay.io/foo/bar:1.0@sha256:…" (the VM registry's name) for messages. */
    readonly name: string;
}

/**
 * Checks the inputs before anything is opened or written: every location parses and names no
 * other digest than `digest`, repositories and tags are names distribution accepts, one tag of a
 * repository is not given two digests. ERR_INVALID_ARGUMENT naming `images[i].<field>`.
 */
export function checkStorageImages(images: readonly StorageImage[]): void {
    checkedImages(images);
}

function checkedImages(images: readonly StorageImage[]): CheckedImage[] {
    if (!Array.isArray(images)) {
        throw invalidArgument("images", "must be a list of { location, repository, tag?, digest }");
    }
    const tags = new Map<string, string>();
    return images.map((image, i) => {
        const at = `images[${i}]`;
        if (typeof image !== "object" || image === null) {
            throw invalidArgument(at, "must be an object { location, repository, tag?, digest }");
        }
        const { location, repository, tag, digest } = image;
        if (typeof digest !== "string" || !isDigest(digest)) {
            throw invalidArgument(
                `${at}.digest`,
                `${JSON.stringify(digest)} is not a digest ("sha256:" and 64 hex digits)`,
            );
        }
        if (typeof location !== "string" || location === "") {
            throw invalidArgument(`${at}.location`, "must be a non-empty image location string");
        }
        let source: StorageSource;
        try {
            source = parseStorageLocation(location);
        } catch (cause) {
            throw invalidArgument(
                `${at}.location`,
                `${(cause as Error).message}; expected e.g. "127.0.0.1:5000/quay.io/org/app@sha256:…", ` +
                    `"oci:/srv/layout:quay.io/org/app:1.0@sha256:…" or "oci-archive:/srv/images.tar:app@sha256:…"`,
                cause,
            );
        }
        if (source.digest !== undefined && source.digest !== digest) {
            throw invalidArgument(
                `${at}.location`,
                `"${location}" names digest ${source.digest}, but the image's digest is ${digest}`,
            );
        }
        if (typeof repository !== "string" || repository.length > REPOSITORY_MAX || !REPOSITORY_RE.test(repository)) {
            throw invalidArgument(
                `${at}.repository`,
                `${JSON.stringify(repository)} is not a repository name the registry accepts: lower-case ` +
                    `components of letters and digits (joined by ".", "_", "__" or "-") separated by "/", ` +
                    `at most ${REPOSITORY_MAX} characters, e.g. "quay.io/org/app"`,
            );
        }
        if (tag !== undefined) {
            if (typeof tag !== "string" || !TAG_RE.test(tag)) {
                throw invalidArgument(
                    `${at}.tag`,
                    `${JSON.stringify(tag)} is not a valid tag (1 to 128 of [A-Za-z0-9_.-], not starting with . or -)`,
                );
            }
            const key = `${repository}:${tag}`;
            const other = tags.get(key);
            if (other !== undefined && other !== digest) {
                throw invalidArgument(`${at}.tag`, `${key} is given two digests, ${other} and ${digest}; give one`);
            }
            tags.set(key, digest);
        }
        return { image, source, name: `${repository}${tag === undefined ? "" : `:${tag}`}@${digest}` };
    });
}

/** What one image consists of, as read from its source. */
export interface StorageImageContent {
    readonly image: StorageImage;
    /** Manifests, children before the index that lists them; the top manifest last. */
    readonly manifests: readonly ManifestBlob[];
    /** Configs and layers of every manifest, each once. */
    readonly blobs: readonly Descriptor[];
}

/** The images read and their sources open: sizes known, nothing written yet. `close` MUST be called. */
export interface RegistryStoragePlan {
    readonly images: readonly StorageImageContent[];
    /** Distinct manifests and blobs, and their bytes (each counted once). */
    readonly manifests: number;
    readonly blobs: number;
    readonly bytes: number;
    /** Writes the images below `root` (distribution's `rootdirectory`), adding to what is there. */
    write(root: string): Promise<RegistryStorageResult>;
    close(): Promise<void>;
}

/** Wraps an error of image `name` so that it names the image; keeps its code. */
function imageError(name: string, location: string, cause: unknown): AirgapError {
    const message = cause instanceof Error ? cause.message : String(cause);
    return new AirgapError(
        isAirgapError(cause) ? cause.code : "ERR_IO",
        `image ${name} (from ${location}): ${message}`,
        {
            cause,
        },
    );
}

function throwIfAborted(signal: AbortSignal | undefined): void {
    if (signal?.aborted) {
        throw new AirgapError("ERR_IO", "writing registry storage was aborted", { cause: signal.reason });
    }
}

/** Reads the manifest `digest` and, for an index, every child the source holds. */
async function readImageTree(
    source: ImageSource,
    checked: CheckedImage,
    log: (line: string) => void,
    signal: AbortSignal | undefined,
): Promise<StorageImageContent> {
    const manifests: ManifestBlob[] = [];
    const blobs = new Map<string, Descriptor>();
    const seen = new Set<string>();
    const visit = async (digest: string, depth: number, top: boolean): Promise<void> => {
        throwIfAborted(signal);
        if (seen.has(digest)) {
            return;
        }
        seen.add(digest);
        let m: ManifestBlob;
        try {
            m = await source.getManifest(digest);
        } catch (err) {
            if (!top && hasCode(err, "ERR_NOT_FOUND")) {
                // An image mirrored for some platforms only: the index lists children its copy lacks.
                log(`image ${checked.name}: child manifest ${digest} is not at the source; not stored`);
                return;
            }
            throw err;
        }
        // Sources verify manifests; checked again because a wrong one would be served under this digest.
        const actual = digestOf(m.bytes, parseDigest(digest).algorithm);
        if (actual !== digest) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `manifest ${digest}: the source gave bytes with digest ${actual}`,
            );
        }
        const parsed = parseManifest(m.bytes, m.mediaType);
        if (parsed.kind === "index") {
            if (depth >= MAX_INDEX_DEPTH) {
                throw new AirgapError(
                    "ERR_PARSE",
                    `manifest ${digest}: indexes nested more than ${MAX_INDEX_DEPTH} deep`,
                );
            }
            for (const child of parsed.manifests) {
                await visit(child.digest, depth + 1, false);
            }
        } else {
            for (const b of referencedBlobs(parsed)) {
                blobs.set(b.digest, b);
            }
        }
        manifests.push({ bytes: m.bytes, mediaType: parsed.mediaType, digest });
    };
    await visit(checked.image.digest, 0, true);
    return { image: checked.image, manifests, blobs: [...blobs.values()] };
}

/**
 * Checks the inputs, opens their sources and reads every manifest (top and children the sources
 * hold): the plan knows the sizes and writes on demand. Sources stay open until `close`.
 */
export async function planRegistryStorage(
    images: readonly StorageImage[],
    options: RegistryStorageOptions = {},
): Promise<RegistryStoragePlan> {
    const checked = checkedImages(images);
    concurrencyOf(options);
    const log = options.log ?? (() => {});
    const { signal } = options;
    const sources = new Map<string, ImageSource>();
    const close = async () => {
        await Promise.allSettled([...sources.values()].map((s) => s.close()));
        sources.clear();
    };
    try {
        const contents: StorageImageContent[] = [];
        const owners: ImageSource[] = [];
        for (const c of checked) {
            throwIfAborted(signal);
            try {
                let source = sources.get(c.source.key);
                if (source === undefined) {
                    source = await openImageSource(sourceLocation(c.source), {
                        ...(options.registry === undefined ? {} : { registry: options.registry }),
                        ...(options.tempDir === undefined ? {} : { archive: { tempDir: options.tempDir } }),
                    });
                    sources.set(c.source.key, source);
                }
                contents.push(await readImageTree(source, c, log, signal));
                owners.push(source);
            } catch (cause) {
                throw imageError(c.name, c.image.location, cause);
            }
        }
        const manifestSizes = new Map<string, number>();
        const blobSizes = new Map<string, number>();
        for (const content of contents) {
            for (const m of content.manifests) manifestSizes.set(m.digest, m.bytes.length);
            for (const b of content.blobs) blobSizes.set(b.digest, b.size);
        }
        const sum = (m: Map<string, number>) => [...m.values()].reduce((n, s) => n + s, 0);
        const totals = {
            manifests: manifestSizes.size,
            blobs: blobSizes.size,
            bytes: sum(manifestSizes) + sum(blobSizes),
        };
        return {
            images: contents,
            ...totals,
            write: async (root) => {
                if (typeof root !== "string" || root === "") {
                    throw invalidArgument("root", "must be the registry's storage root directory (its rootdirectory)");
                }
                const writer = new StorageWriter(path.resolve(root), options);
                for (const [i, content] of contents.entries()) {
                    throwIfAborted(signal);
                    try {
                        await writer.writeImage(owners[i]!, content);
                    } catch (cause) {
                        throw imageError(checked[i]!.name, checked[i]!.image.location, cause);
                    }
                    log(
                        `stored ${checked[i]!.name} (${content.manifests.length} manifests, ${content.blobs.length} blobs)`,
                    );
                }
                return { ...totals, bytesWritten: writer.bytesWritten };
            },
            close,
        };
    } catch (err) {
        await close();
        throw err;
    }
}

/** The location to open: layouts and archives without a reference name (images are read by digest). */
function sourceLocation(s: StorageSource): ImageLocation {
    if (s.location.transport === "docker") {
        return s.location;
    }
    return { transport: s.location.transport, path: s.location.path };
}

function concurrencyOf(options: RegistryStorageOptions): number {
    const c = options.concurrency ?? 4;
    if (!Number.isSafeInteger(c) || c < 1) {
        throw invalidArgument("concurrency", `must be a positive integer, got ${c}`);
    }
    return c;
}

/** Puts blobs (once each per write), manifests and links below one root. */
class StorageWriter {
    public bytesWritten = 0;
    private readonly blobs = new Map<string, Promise<void>>();
    private readonly concurrency: number;

    constructor(
        private readonly root: string,
        private readonly options: RegistryStorageOptions,
    ) {
        this.concurrency = concurrencyOf(options);
    }

    async writeImage(source: ImageSource, content: StorageImageContent): Promise<void> {
        const { signal } = this.options;
        await this.eachLimited(content.blobs, (b) => this.once(b.digest, () => this.putBlob(source, b)));
        for (const m of content.manifests) {
            throwIfAborted(signal);
            await this.once(m.digest, () => this.putBytes(m.digest, m.bytes));
        }
        // Everything the links will name is in place and verified: link it, the tag last.
        const { repository, tag, digest } = content.image;
        const p = registryStoragePaths;
        for (const b of content.blobs) {
            throwIfAborted(signal);
            await writeLink(p.layerLink(this.root, repository, b.digest), b.digest);
        }
        for (const m of content.manifests) {
            throwIfAborted(signal);
            await writeLink(p.revisionLink(this.root, repository, m.digest), m.digest);
        }
        if (tag !== undefined) {
            throwIfAborted(signal);
            await this.writeTag(repository, tag, digest);
        }
    }

    /** Runs `fn` over `items` with the configured concurrency; after a failure none starts, and all in flight settle first. */
    private async eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
        let next = 0;
        let failure: { error: unknown } | undefined;
        const worker = async () => {
            while (next < items.length && failure === undefined && !this.options.signal?.aborted) {
                const item = items[next++]!;
                try {
                    await fn(item);
                } catch (error) {
                    failure ??= { error };
                }
            }
        };
        await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, worker));
        if (failure !== undefined) {
            throw failure.error;
        }
        throwIfAborted(this.options.signal);
    }

    private once(digest: string, put: () => Promise<void>): Promise<void> {
        let p = this.blobs.get(digest);
        if (p === undefined) {
            p = put();
            this.blobs.set(digest, p);
            // A failed put may be tried again by a later image (another source may have the blob).
            p.catch(() => this.blobs.delete(digest));
        }
        return p;
    }

    private async putBlob(source: ImageSource, blob: Descriptor): Promise<void> {
        const target = registryStoragePaths.blobData(this.root, blob.digest);
        if (await hasContent(target, blob.digest, blob.size)) {
            return;
        }
        await fsp.mkdir(path.dirname(target), { recursive: true });
        const reader = await source.getBlob(blob.digest).catch((cause) => {
            throw isAirgapError(cause)
                ? new AirgapError(cause.code, `blob ${blob.digest}: ${cause.message}`, { cause })
                : new AirgapError("ERR_IO", `blob ${blob.digest}: reading it from the source failed`, { cause });
        });
        if (reader.size !== undefined && reader.size !== blob.size) {
            reader.stream.destroy();
            throw new AirgapError(
                "ERR_VERIFICATION",
                `blob ${blob.digest}: the source holds ${reader.size} bytes, the manifest says ${blob.size}`,
            );
        }
        const { signal } = this.options;
        const abort = () => reader.stream.destroy(new AirgapError("ERR_IO", `blob ${blob.digest}: aborted`));
        signal?.addEventListener("abort", abort, { once: true });
        try {
            throwIfAborted(signal);
            await writeStreamAtomic(target, reader.stream, [
                new DigestVerifier({ digest: blob.digest, size: blob.size }),
            ]);
        } catch (cause) {
            reader.stream.destroy();
            if (isAirgapError(cause)) {
                throw cause;
            }
            throw new AirgapError("ERR_IO", `blob ${blob.digest}: writing ${target} failed`, { cause });
        } finally {
            signal?.removeEventListener("abort", abort);
        }
        this.bytesWritten += blob.size;
    }

    private async putBytes(digest: string, bytes: Buffer): Promise<void> {
        const target = registryStoragePaths.blobData(this.root, digest);
        if (await hasContent(target, digest, bytes.length)) {
            return;
        }
        await writeFileAtomicAsync(target, bytes);
        this.bytesWritten += bytes.length;
    }

    /**
     * Points `tag` at `digest`. A new tag's directory is made aside (in `_manifests`, which the
     * registry lists nothing of but `revisions` and `tags`) and renamed into `tags/`, so the tag
     * never lists without its `current/link`.
     */
    private async writeTag(repository: string, tag: string, digest: string): Promise<void> {
        const p = registryStoragePaths;
        const tagDir = p.tagDir(this.root, repository, tag);
        if (!(await exists(tagDir))) {
            const manifestsDir = path.dirname(path.dirname(tagDir));
            const aside = path.join(manifestsDir, `.tag.tmp-${randomBytes(6).toString("hex")}`);
            try {
                await writeLink(path.join(aside, "index", ...digestPath(digest), "link"), digest);
                await writeLink(path.join(aside, "current", "link"), digest);
                await fsp.mkdir(path.dirname(tagDir), { recursive: true });
                await fsp.rename(aside, tagDir);
                return;
            } catch (err) {
                const code = (err as NodeJS.ErrnoException).code;
                // Made meanwhile by someone else: update it in place below.
                if (code !== "ENOTEMPTY" && code !== "EEXIST") {
                    throw err;
                }
            } finally {
                await fsp.rm(aside, { recursive: true, force: true });
            }
        }
        await writeLink(p.tagIndexLink(this.root, repository, tag, digest), digest);
        await writeLink(p.tagCurrentLink(this.root, repository, tag), digest);
    }
}

async function exists(file: string): Promise<boolean> {
    try {
        await fsp.stat(file);
        return true;
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            return false;
        }
        throw err;
    }
}

/** True when `file` holds exactly the content of `digest` (size checked first, then the hash). */
async function hasContent(file: string, digest: string, size: number): Promise<boolean> {
    let stat: Stats;
    try {
        stat = await fsp.stat(file);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            return false;
        }
        throw err;
    }
    if (!stat.isFile() || stat.size !== size) {
        return false;
    }
    const { algorithm } = parseDigest(digest);
    return (await fileDigest(file, algorithm)) === digest;
}

async function fileDigest(file: string, algorithm: DigestAlgorithm): Promise<string> {
    const hash = createHash(algorithm);
    for await (const chunk of createReadStream(file)) {
        hash.update(chunk as Buffer);
    }
    return `${algorithm}:${hash.digest("hex")}`;
}

/** Writes `data` to a temporary file beside `target`, syncs it, renames it over `target`. */
async function writeFileAtomicAsync(target: string, data: string | Buffer): Promise<void> {
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
    try {
        const handle = await fsp.open(tmp, "wx", 0o644);
        try {
            await handle.writeFile(data);
            await handle.sync();
        } finally {
            await handle.close();
        }
        await fsp.rename(tmp, target);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    }
}

/** A link file holding `digest` (no newline), unless it already does. */
async function writeLink(file: string, digest: string): Promise<void> {
    try {
        if ((await fsp.readFile(file, "utf8")) === digest) {
            return;
        }
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
            throw err;
        }
    }
    await writeFileAtomicAsync(file, digest);
}

/**
 * Total bytes the images take in the storage (each blob and manifest once; directories and link
 * files not counted), read from their manifests without writing anything.
 */
export async function registryStorageSize(
    images: readonly StorageImage[],
    options: RegistryStorageOptions = {},
): Promise<number> {
    const plan = await planRegistryStorage(images, options);
    try {
        return plan.bytes;
    } finally {
        await plan.close();
    }
}

/**
 * Writes (or adds to) distribution's storage under `root` (the `rootdirectory`). Every blob is
 * digest-checked while written; a blob already present with the right content is not rewritten.
 * Every manifest is read before anything is written; an image whose content fails midway gets no
 * link. Errors name the image (and the blob) and keep the code of the cause: ERR_NOT_FOUND for
 * what the source lacks, ERR_VERIFICATION for content that does not match its digest.
 */
export async function writeRegistryStorage(
    root: string,
    images: readonly StorageImage[],
    options: RegistryStorageOptions = {},
): Promise<RegistryStorageResult> {
    if (typeof root !== "string" || root === "") {
        throw invalidArgument("root", "must be the registry's storage root directory (its rootdirectory)");
    }
    const plan = await planRegistryStorage(images, options);
    try {
        return await plan.write(root);
    } finally {
        await plan.close();
    }
}
