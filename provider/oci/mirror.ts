/**
 * The ImageMirror chain of named steps (`skopeo copy --all --preserve-digests`, `skopeo sync`,
 * oc-mirror's mirror-to-disk and disk-to-mirror):
 *
 *   resolveImageLock (program time, preview too) → syncImages (open → copy → commit → prune)
 *     → readImages (refresh: what the destination really holds) | removeImages (destroy)
 *   hostConfigFor: the host configuration pointing clients at the mirror (registries.conf v2,
 *   OpenShift ImageDigestMirrorSet, HostMirrorConfig `registries` entries)
 *
 * Naming at the destination:
 * - a registry (`docker://host[:port][/namespace]`): the source repository below the destination,
 *   with or without its registry as first path component (`repositoryPath`); the tag is the
 *   source tag, or for an image pinned only by digest a tag generated from the digest
 *   (`sha256-<hex>`), so that registries never garbage-collect it as untagged;
 * - a layout or archive (`oci:` / `oci-archive:`): the image is named by its full source name and
 *   that tag (`quay.io/org/app:1.2`), whatever `repositoryPath` says, so that a layout carried
 *   across the air gap still says where each image came from, and a disk-to-mirror run finds it.
 */

import { createReadStream, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tar from "tar-stream";
import { stringify as stringifyYaml } from "yaml";
import { AirgapError, hasCode, invalidArgument, isAirgapError } from "../errors";
import { renderRegistriesConf } from "../host/render";
import type { RegistryMirrorSpec } from "../host/types";
import { extractLayoutArchive } from "./archive_src";
import { type CopyImageRequest, type CopyProgress, copyImages } from "./copy";
import { parseDigest } from "./digest";
import {
    ANNOTATION_REF_NAME,
    blobPath,
    findByRefName,
    type LayoutIndex,
    OCI_INDEX_FILE,
    parseLayoutIndex,
    readLayout,
    serializeLayoutIndex,
    writeFileAtomic,
} from "./layout";
import { parseManifest, referencedBlobs } from "./manifest";
import { openImageDestination, openImageSource } from "./open";
import { parseDockerConfig } from "./auth";
import {
    type DockerReference,
    fullName,
    nameOnly,
    parseDockerReference,
    type RegistryMode,
    withRegistry,
    withTag,
} from "./reference";
import { resolveTags } from "./resolve";
import type { RegistryOptions } from "./registry_transport";
import type { ImageDestination, ImageLocation, ImageSource } from "./types";

/** The lock: source reference (as written in `images`) → digest of its manifest or index. */
export type ImageLock = Record<string, string>;

export interface ImageTlsSpec {
    /** PEM CA certificate(s) trusted for every registry, in addition to the system ones. */
    caCert?: string;
    /** Registries (`host[:port]`) reached without TLS verification, or over plain HTTP. */
    insecureRegistries?: string[];
}

export interface ImageMirrorSpec {
    /** The lock: source reference → digest. */
    images: ImageLock;
    /** `docker://host[:port][/namespace]`, `oci:/path/layout` or `oci-archive:/path/images.tar`. */
    destination: string;
    /** `docker://` (each image's own registry), `oci:/path` or `oci-archive:/path`. Defaults to "docker://". */
    source?: string;
    /** Defaults to "keep-registry". Applies to registry destinations. */
    repositoryPath?: RegistryMode;
    /** "os/arch[/variant]" to copy from multi-platform images. Defaults to all. */
    platforms?: string[];
    /** Docker config.json / pull-secret text with credentials for the source and destination registries. */
    auth?: string;
    tls?: ImageTlsSpec;
    /** Blobs copied at once. Defaults to 4. */
    concurrency?: number;
    /** Name used in the rendered host configuration (ImageDigestMirrorSet `metadata.name`, registries.conf header). */
    name?: string;
}

/** What one image put at the destination: enough to check it on refresh and remove it on destroy. */
export interface PushedImage {
    /** The lock key. */
    source: string;
    /** `docker://host/repository`, `oci:/path` or `oci-archive:/path`. */
    destination: string;
    /** The tag (registry) or reference name (layout, archive) given to the image, if any. */
    tag?: string;
    /** The digest `tag` names. */
    top?: string;
    /** Every manifest put, children first. */
    manifests: string[];
}

export interface ImageMirrorState extends ImageMirrorSpec {
    /** Source reference → the image at the destination by digest. */
    mirrored: Record<string, string>;
    /** Bytes of the mirrored blobs and manifests (each blob counted once). */
    bytes: number;
    /** Distinct blobs (layers and configs) mirrored. */
    blobCount: number;
    /** Entries for HostMirrorConfig's `registries`: one per source registry. Empty for layout destinations. */
    registries: RegistryMirrorSpec[];
    /** OpenShift ImageDigestMirrorSet YAML ("" for layout destinations). */
    imageDigestMirrorSet: string;
    /** containers-registries.conf(5) v2 text, mirror-by-digest-only ("" for layout destinations). */
    registriesConf: string;
    pushed: PushedImage[];
    /** Problems found by the last refresh; empty when the destination is as mirrored. */
    drift: string[];
}

/** Where images go or come from. */
export type MirrorTarget =
    | { readonly kind: "registry"; readonly registry: string }
    | { readonly kind: "oci"; readonly path: string }
    | { readonly kind: "oci-archive"; readonly path: string };

const DEFAULT_SOURCE = "docker://";

/** `host[:port]` as `tls.insecureRegistries` lists it. */
export const registryHostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/;
const TAG_MAX = 128;

/** Parses `destination`: `docker://host[:port][/namespace]`, `oci:/path` or `oci-archive:/path`. */
export function parseMirrorTarget(s: string, argument: string): MirrorTarget {
    if (typeof s !== "string") {
        throw invalidArgument(argument, `must be a string such as "docker://mirror.local:5000", got ${typeof s}`);
    }
    if (s.startsWith("docker://")) {
        const registry = s.slice("docker://".length).replace(/\/+$/, "");
        // withRegistry validates host[:port] and the namespace.
        try {
            withRegistry({ domain: "example.invalid", path: "x" }, registry, "strip-registry");
        } catch (cause) {
            throw invalidArgument(
                argument,
                `"${s}" must be "docker://host[:port][/namespace]", e.g. "docker://mirror.local:5000"`,
                cause,
            );
        }
        return { kind: "registry", registry };
    }
    for (const kind of ["oci", "oci-archive"] as const) {
        if (s.startsWith(`${kind}:`)) {
            const p = s.slice(kind.length + 1);
            if (p === "" || p.includes(":")) {
                throw invalidArgument(
                    argument,
                    `"${s}" must be "${kind}:/path" without a reference (images are named after their source)`,
                );
            }
            return { kind, path: p };
        }
    }
    throw invalidArgument(
        argument,
        `"${s}" has an unknown transport; use "docker://host[:port][/namespace]", "oci:/path" or "oci-archive:/path/file.tar"`,
    );
}

/** Parses `source`: "docker://" (the default), `oci:/path` or `oci-archive:/path`. */
export function parseMirrorSource(
    s: string | undefined,
): { readonly kind: "oci" | "oci-archive"; readonly path: string } | undefined {
    if (s === undefined || s === DEFAULT_SOURCE) {
        return undefined;
    }
    const target = parseMirrorTarget(s, "source");
    if (target.kind === "registry") {
        throw invalidArgument(
            "source",
            `"${s}": images come from their own registries with "docker://"; give no host (or use oci:/oci-archive:)`,
        );
    }
    return target;
}

/** The reference a lock key names ("quay.io/org/app:1.2" or "docker://quay.io/org/app:1.2"). */
export function sourceReference(key: string): DockerReference {
    return parseDockerReference(key.startsWith("docker://") ? key.slice("docker://".length) : key);
}

/** The tag an image gets at the destination: the source tag, else one made from the digest, else "latest". */
export function mirrorTag(ref: DockerReference): string {
    if (ref.tag !== undefined) {
        return ref.tag;
    }
    if (ref.digest !== undefined) {
        return ref.digest.replace(":", "-").slice(0, TAG_MAX);
    }
    return "latest";
}

/** The reference name of an image in a layout or archive: "quay.io/org/app:1.2". */
export function layoutRefName(ref: DockerReference): string {
    return `${fullName(ref)}:${mirrorTag(ref)}`;
}

/** The image's repository and tag in a mirror registry. */
export function mirrorReference(ref: DockerReference, registry: string, mode: RegistryMode): DockerReference {
    return withTag(withRegistry(nameOnly(ref), registry, mode), mirrorTag(ref));
}

/** Registry options per domain from `auth` and `tls`. */
/** Overrides of registry options (e.g. retries, or a dispatcher in tests): for all registries, or per domain. */
export type RegistryOverrides = Partial<RegistryOptions> | ((domain: string) => Partial<RegistryOptions>);

export function registryOptionsFor(
    spec: Pick<ImageMirrorSpec, "auth" | "tls">,
    overrides: RegistryOverrides = {},
): (domain: string) => RegistryOptions {
    const dockerConfig = spec.auth === undefined || spec.auth === "" ? undefined : parseDockerConfig(spec.auth, "auth");
    const insecure = new Set((spec.tls?.insecureRegistries ?? []).map((r) => r.toLowerCase()));
    return (domain) => ({
        ...(dockerConfig === undefined ? {} : { dockerConfig }),
        ...(spec.tls?.caCert === undefined ? {} : { caPem: spec.tls.caCert }),
        ...(insecure.has(domain.toLowerCase()) ? { insecure: true } : {}),
        ...(typeof overrides === "function" ? overrides(domain) : overrides),
    });
}

export interface ResolveImageLockOptions extends Pick<ImageMirrorSpec, "source" | "auth" | "tls"> {
    /** Source references, as the user wrote them. */
    images: string[];
    /** Overrides for every registry request (e.g. retries in tests). */
    registry?: RegistryOverrides;
}

/**
 * Resolves each image to the digest of its manifest or index: at the source registry (the exact
 * bytes served), or in the source layout / archive by reference name. Errors name the reference.
 */
export async function resolveImageLock(options: ResolveImageLockOptions): Promise<ImageLock> {
    const { images } = options;
    if (!Array.isArray(images) || images.length === 0) {
        throw invalidArgument("images", 'list at least one image reference, e.g. "quay.io/org/app:1.2"');
    }
    const refs = images.map((s, i) => {
        try {
            return sourceReference(s);
        } catch (cause) {
            throw invalidArgument(`images[${i}]`, (cause as Error).message, cause);
        }
    });
    const source = parseMirrorSource(options.source);
    if (source === undefined) {
        const digests = await resolveTags(images, { registry: registryOptionsFor(options, options.registry) });
        return sortedLock(images.map((s) => [s, digests.get(s)!]));
    }
    const index = source.kind === "oci" ? await readLayout(source.path) : await readArchiveIndex(source.path);
    const missing: string[] = [];
    const entries = images.map((s, i): [string, string] => {
        const ref = refs[i]!;
        const found = findByRefName(index, layoutRefName(ref));
        const digest = found[found.length - 1]?.digest;
        if (digest === undefined) {
            missing.push(`${s} (named "${layoutRefName(ref)}")`);
            return [s, ""];
        }
        if (ref.digest !== undefined && ref.digest !== digest) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `images: ${s} is pinned to ${ref.digest}, but ${source.kind}:${source.path} holds ${digest} under "${layoutRefName(ref)}"`,
                { argument: "images" },
            );
        }
        return [s, digest];
    });
    if (missing.length > 0) {
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `images: ${source.kind}:${source.path} does not hold ${missing.join(", ")}`,
            { argument: "images" },
        );
    }
    return sortedLock(entries);
}

function sortedLock(entries: [string, string][]): ImageLock {
    return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `index.json` of an OCI archive, read by streaming the tar without extracting blobs. */
export async function readArchiveIndex(file: string): Promise<LayoutIndex> {
    const where = `OCI archive ${file}`;
    try {
        await fsp.access(file);
    } catch (cause) {
        throw new AirgapError("ERR_NOT_FOUND", `${where} does not exist`, { cause });
    }
    const extract = tar.extract();
    const input = createReadStream(file);
    input.on("error", (err) => extract.destroy(err));
    input.pipe(extract);
    let bytes: Buffer | undefined;
    try {
        for await (const entry of extract) {
            const name = entry.header.name.replace(/^(\.\/)+/, "");
            if (name === OCI_INDEX_FILE) {
                const chunks: Buffer[] = [];
                for await (const chunk of entry) {
                    chunks.push(Buffer.from(chunk as Uint8Array));
                }
                bytes = Buffer.concat(chunks);
            } else {
                for await (const _ of entry) {
                    // skipped
                }
            }
        }
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `reading ${where}`, { cause });
    } finally {
        input.destroy();
    }
    if (bytes === undefined) {
        throw new AirgapError("ERR_PARSE", `${where} holds no index.json; it is not an OCI image archive`);
    }
    return parseLayoutIndex(bytes, `${where}: index.json`);
}

export interface SyncImagesOptions {
    /** What the previous run pushed: manifests it names and the new lock does not are removed. */
    previous?: readonly PushedImage[];
    onProgress?: (p: CopyProgress) => void;
    /** Milliseconds between progress reports. Defaults to 5000. */
    progressIntervalMs?: number;
    /** Overrides for every registry request (e.g. retries in tests). */
    registry?: RegistryOverrides;
}

interface Planned {
    key: string;
    ref: DockerReference;
    digest: string;
    source: ImageLocation;
    /** The destination location (registries: the repository with its tag). */
    destination: ImageLocation;
    /** `docker://host/repository`, `oci:/path` or `oci-archive:/path`. */
    store: string;
    tag: string;
}

function plan(spec: ImageMirrorSpec, layoutSourceDir: string | undefined): Planned[] {
    const target = parseMirrorTarget(spec.destination, "destination");
    const mode = spec.repositoryPath ?? "keep-registry";
    return Object.keys(spec.images)
        .sort()
        .map((key) => {
            const ref = sourceReference(key);
            const digest = spec.images[key]!;
            const source: ImageLocation =
                layoutSourceDir === undefined
                    ? { transport: "docker", reference: ref }
                    : { transport: "oci", path: layoutSourceDir, reference: layoutRefName(ref) };
            if (target.kind === "registry") {
                let dest: DockerReference;
                try {
                    dest = mirrorReference(ref, target.registry, mode);
                } catch (cause) {
                    throw invalidArgument("repositoryPath", `${key}: ${(cause as Error).message}`, cause);
                }
                return {
                    key,
                    ref,
                    digest,
                    source,
                    destination: { transport: "docker", reference: dest },
                    store: `docker://${fullName(dest)}`,
                    tag: dest.tag!,
                };
            }
            return {
                key,
                ref,
                digest,
                source,
                destination: { transport: target.kind, path: target.path },
                store: `${target.kind}:${target.path}`,
                tag: layoutRefName(ref),
            };
        });
}

/** Distinct blobs and bytes below the manifests `digests` of `source`. */
async function contentOf(source: ImageSource, digests: readonly string[], blobs: Map<string, number>): Promise<number> {
    let manifestBytes = 0;
    for (const d of digests) {
        const m = await source.getManifest(d);
        manifestBytes += m.bytes.length;
        const parsed = parseManifest(m.bytes, m.mediaType);
        if (parsed.kind === "manifest") {
            for (const b of referencedBlobs(parsed)) {
                blobs.set(b.digest, b.size);
            }
        }
    }
    return manifestBytes;
}

/**
 * Copies every image of the lock (by its locked digest) to the destination, tags it, then
 * removes what `options.previous` pushed and the lock no longer names. Every image is tried;
 * when some fail, the error names each failing source reference.
 */
export async function syncImages(spec: ImageMirrorSpec, options: SyncImagesOptions = {}): Promise<ImageMirrorState> {
    const sourceTarget = parseMirrorSource(spec.source);
    const registry = registryOptionsFor(spec, options.registry);
    const open = { registry };
    let tempDir: string | undefined;
    let layoutSourceDir: string | undefined;
    if (sourceTarget?.kind === "oci") {
        layoutSourceDir = sourceTarget.path;
    } else if (sourceTarget?.kind === "oci-archive") {
        tempDir = await fsp.mkdtemp(path.join(os.tmpdir(), "airgap-image-source-"));
        await extractLayoutArchive(sourceTarget.path, tempDir);
        layoutSourceDir = tempDir;
    }
    const sources: ImageSource[] = [];
    const destinations: ImageDestination[] = [];
    try {
        const planned = plan(spec, layoutSourceDir);
        const shared = new Map<string, ImageDestination>();
        const requests: CopyImageRequest[] = [];
        for (const p of planned) {
            const source = await openImageSource(p.source, open);
            sources.push(source);
            let destination: ImageDestination;
            if (p.destination.transport === "docker") {
                destination = await openImageDestination(p.destination, open);
                destinations.push(destination);
            } else {
                let d = shared.get(p.store);
                if (d === undefined) {
                    d = await openImageDestination(p.destination, open);
                    shared.set(p.store, d);
                    destinations.push(d);
                }
                destination = d;
            }
            requests.push({
                source,
                destination,
                digest: p.digest,
                tag: p.tag,
                ...(spec.platforms === undefined || spec.platforms.length === 0 ? {} : { platforms: spec.platforms }),
            });
        }
        const entries = await copyImages(requests, {
            concurrency: spec.concurrency ?? 4,
            onProgress: options.onProgress,
            progressIntervalMs: options.progressIntervalMs ?? 5000,
        });
        const failed = entries.flatMap((e, i) => (e.ok ? [] : [{ key: planned[i]!.key, error: e.error }]));
        if (failed.length > 0) {
            const first = failed[0]!.error;
            throw new AirgapError(
                isAirgapError(first) ? first.code : "ERR_NETWORK",
                `mirroring ${failed.length} of ${planned.length} images to ${spec.destination} failed:\n` +
                    failed.map((f) => `  ${f.key}: ${(f.error as Error).message ?? String(f.error)}`).join("\n"),
                { cause: failed.map((f) => f.error) },
            );
        }
        for (const d of destinations) {
            await d.commit();
        }
        const mirrored: Record<string, string> = {};
        const pushed: PushedImage[] = [];
        const blobs = new Map<string, number>();
        let manifestBytes = 0;
        for (const [i, e] of entries.entries()) {
            if (!e.ok) continue;
            const p = planned[i]!;
            const r = e.result;
            const top = r.destinationReference?.slice(r.destinationReference.lastIndexOf("@") + 1);
            mirrored[p.key] =
                p.destination.transport === "docker"
                    ? `${fullName(p.destination.reference)}@${top ?? r.sourceDigest}`
                    : `${p.store}:${p.tag}@${top ?? r.sourceDigest}`;
            pushed.push({
                source: p.key,
                destination: p.store,
                ...(r.tagged === undefined ? {} : { tag: r.tagged }),
                ...(top === undefined ? {} : { top }),
                manifests: [...new Set(r.manifests)],
            });
            manifestBytes += await contentOf(requests[i]!.source, r.manifests, blobs);
        }
        await prune(options.previous ?? [], pushed, open);
        return {
            ...spec,
            images: { ...spec.images },
            mirrored,
            bytes: manifestBytes + [...blobs.values()].reduce((n, s) => n + s, 0),
            blobCount: blobs.size,
            ...hostConfigFor(spec),
            pushed,
            drift: [],
        };
    } finally {
        await Promise.allSettled([...sources, ...destinations].map((x) => x.close()));
        if (tempDir !== undefined) {
            await fsp.rm(tempDir, { recursive: true, force: true });
        }
    }
}

/** Removes what `old` pushed and `current` does not hold (same store and digest, or same layout name). */
async function prune(
    old: readonly PushedImage[],
    current: readonly PushedImage[],
    open: { registry: (domain: string) => RegistryOptions },
): Promise<void> {
    const keep = new Set(current.flatMap((p) => p.manifests.map((d) => `${p.destination} ${d}`)));
    const keepNames = new Set(current.flatMap((p) => (p.tag === undefined ? [] : [`${p.destination} ${p.tag}`])));
    await removePushed(old, open, (store, digest) => keep.has(`${store} ${digest}`), keepNames);
}

/**
 * Deletes manifests (registries, top first) or layout index entries of `pushed`, skipping those
 * `kept` says are still wanted. Archives are removed as a whole only by `removeImages`.
 */
async function removePushed(
    pushed: readonly PushedImage[],
    open: { registry: (domain: string) => RegistryOptions },
    kept: (store: string, digest: string) => boolean,
    keptNames: ReadonlySet<string>,
): Promise<void> {
    const layouts = new Map<string, Set<string>>();
    for (const p of pushed) {
        if (p.destination.startsWith("docker://")) {
            const dest = await openImageDestination(p.destination, open);
            try {
                const deleter = dest as unknown as { deleteManifest?: (digest: string) => Promise<boolean> };
                for (const d of [...p.manifests].reverse()) {
                    if (!kept(p.destination, d)) {
                        await deleter.deleteManifest?.(d);
                    }
                }
            } finally {
                await dest.close();
            }
        } else if (p.destination.startsWith("oci:") && p.tag !== undefined) {
            if (!keptNames.has(`${p.destination} ${p.tag}`)) {
                const names = layouts.get(p.destination) ?? new Set<string>();
                names.add(p.tag);
                layouts.set(p.destination, names);
            }
        }
    }
    for (const [store, names] of layouts) {
        const dir = store.slice("oci:".length);
        let index: LayoutIndex;
        try {
            index = await readLayout(dir);
        } catch (err) {
            if (hasCode(err, "ERR_NOT_FOUND")) continue;
            throw err;
        }
        const manifests = index.manifests.filter((d) => {
            const name = d.annotations?.[ANNOTATION_REF_NAME];
            return name === undefined || !names.has(name);
        });
        await writeFileAtomic(path.join(dir, OCI_INDEX_FILE), serializeLayoutIndex({ manifests, raw: index.raw }));
    }
}

/** Removes everything this resource pushed: registry manifests by digest, layout entries, the archive. */
export async function removeImages(
    state: Pick<ImageMirrorState, "pushed" | "destination" | "auth" | "tls">,
    options: { registry?: RegistryOverrides } = {},
): Promise<void> {
    const open = { registry: registryOptionsFor(state, options.registry) };
    const pushed = state.pushed ?? [];
    await removePushed(pushed, open, () => false, new Set());
    for (const store of new Set(pushed.map((p) => p.destination))) {
        if (store.startsWith("oci-archive:")) {
            await fsp.rm(store.slice("oci-archive:".length), { force: true });
        }
    }
}

type Found = { kind: "ok" } | { kind: "missing"; why: string } | { kind: "moved"; digest: string };

async function checkRegistry(p: PushedImage, open: { registry: (domain: string) => RegistryOptions }): Promise<Found> {
    const base = p.destination;
    const named = p.tag !== undefined ? `${base}:${p.tag}` : p.top !== undefined ? `${base}@${p.top}` : undefined;
    const probe = async (location: string, digest?: string): Promise<string | undefined> => {
        const src = await openImageSource(location, open);
        try {
            return (await src.getManifest(digest)).digest;
        } catch (err) {
            if (hasCode(err, "ERR_NOT_FOUND")) return undefined;
            throw err;
        } finally {
            await src.close();
        }
    };
    if (named !== undefined) {
        const at = await probe(named);
        if (at === undefined) {
            return { kind: "missing", why: `${named.slice("docker://".length)} is missing` };
        }
        if (p.top !== undefined && at !== p.top) {
            return { kind: "moved", digest: at };
        }
    }
    for (const d of p.manifests) {
        if ((await probe(`${base}@${d}`, d)) === undefined) {
            return { kind: "missing", why: `${base.slice("docker://".length)}@${d} is missing` };
        }
    }
    return { kind: "ok" };
}

async function checkLayout(p: PushedImage, index: LayoutIndex | undefined, dir: string | undefined): Promise<Found> {
    if (index === undefined) {
        return { kind: "missing", why: `${p.destination} is missing` };
    }
    if (p.tag !== undefined) {
        const found = findByRefName(index, p.tag);
        const at = found[found.length - 1]?.digest;
        if (at === undefined) {
            return { kind: "missing", why: `${p.destination} has no image named "${p.tag}"` };
        }
        if (p.top !== undefined && at !== p.top) {
            return { kind: "moved", digest: at };
        }
    }
    if (dir !== undefined) {
        for (const d of p.manifests) {
            try {
                await fsp.access(blobPath(dir, d));
            } catch {
                return { kind: "missing", why: `${p.destination} misses manifest ${d}` };
            }
        }
    }
    return { kind: "ok" };
}

/**
 * What the destination actually holds: each pushed image's tag re-resolved and its manifests
 * checked. `images` keeps the lock digest of images found as pushed, takes the digest found for
 * a tag that now names something else, and drops missing images; `drift` says what is wrong.
 */
export async function readImages(
    state: ImageMirrorState,
    options: { registry?: RegistryOverrides } = {},
): Promise<ImageMirrorState> {
    const open = { registry: registryOptionsFor(state, options.registry) };
    const indexes = new Map<string, LayoutIndex | undefined>();
    const indexOf = async (store: string): Promise<LayoutIndex | undefined> => {
        if (!indexes.has(store)) {
            const archive = store.startsWith("oci-archive:");
            const p = archive ? store.slice("oci-archive:".length) : store.slice("oci:".length);
            try {
                indexes.set(store, archive ? await readArchiveIndex(p) : await readLayout(p));
            } catch (err) {
                if (!hasCode(err, "ERR_NOT_FOUND")) throw err;
                indexes.set(store, undefined);
            }
        }
        return indexes.get(store);
    };
    const images: ImageLock = {};
    const mirrored: Record<string, string> = {};
    const drift: string[] = [];
    const pushedKeys = new Set((state.pushed ?? []).map((p) => p.source));
    for (const key of Object.keys(state.images ?? {})) {
        if (!pushedKeys.has(key)) {
            drift.push(`${key}: not mirrored`);
        }
    }
    for (const p of state.pushed ?? []) {
        const locked = state.images?.[p.source];
        let found: Found;
        if (p.destination.startsWith("docker://")) {
            found = await checkRegistry(p, open);
        } else {
            const dir = p.destination.startsWith("oci:") ? p.destination.slice("oci:".length) : undefined;
            found = await checkLayout(p, await indexOf(p.destination), dir);
        }
        if (found.kind === "missing") {
            drift.push(`${p.source}: ${found.why}`);
            continue;
        }
        if (found.kind === "moved") {
            drift.push(`${p.source}: the destination tag names ${found.digest}, not ${p.top}`);
            images[p.source] = found.digest;
            continue;
        }
        if (locked !== undefined) {
            images[p.source] = locked;
        }
        const m = state.mirrored?.[p.source];
        if (m !== undefined) {
            mirrored[p.source] = m;
        }
    }
    return { ...state, images: sortedLock(Object.entries(images)), mirrored, drift };
}

/** One `{source, mirrors}` entry per source registry, for registry destinations. */
export function mirrorRegistries(
    spec: Pick<ImageMirrorSpec, "images" | "destination" | "repositoryPath" | "tls">,
): RegistryMirrorSpec[] {
    const target = parseMirrorTarget(spec.destination, "destination");
    if (target.kind !== "registry") {
        return [];
    }
    const mode = spec.repositoryPath ?? "keep-registry";
    const host = target.registry.split("/")[0]!.toLowerCase();
    const insecure = (spec.tls?.insecureRegistries ?? []).some((r) => r.toLowerCase() === host);
    const bySource = new Map<string, string>();
    for (const key of Object.keys(spec.images ?? {})) {
        const ref = sourceReference(key);
        const mirror = withRegistry({ domain: ref.domain, path: "x" }, target.registry, mode);
        // The mirror prefix standing for the source registry: the mirror repository without the path.
        bySource.set(ref.domain, fullName(mirror).slice(0, -"/x".length));
    }
    return [...bySource.keys()].sort().map((source) => ({
        source,
        mirrors: [bySource.get(source)!],
        mirrorByDigestOnly: true,
        ...(insecure ? { insecure: true } : {}),
    }));
}

/** An OpenShift `ImageDigestMirrorSet` for the entries. */
export function renderImageDigestMirrorSet(name: string, registries: readonly RegistryMirrorSpec[]): string {
    const metadataName =
        name
            .toLowerCase()
            .replace(/[^a-z0-9.-]+/g, "-")
            .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "") || "image-mirror";
    return stringifyYaml({
        apiVersion: "config.openshift.io/v1",
        kind: "ImageDigestMirrorSet",
        metadata: { name: metadataName },
        spec: {
            imageDigestMirrors: registries.map((r) => ({ source: r.source, mirrors: [...r.mirrors] })),
        },
    });
}

/** The host configuration outputs: HostMirrorConfig entries, registries.conf v2 text, ImageDigestMirrorSet YAML. */
export function hostConfigFor(
    spec: Pick<ImageMirrorSpec, "images" | "destination" | "repositoryPath" | "tls" | "name">,
): Pick<ImageMirrorState, "registries" | "registriesConf" | "imageDigestMirrorSet"> {
    const registries = mirrorRegistries(spec);
    if (registries.length === 0) {
        return { registries, registriesConf: "", imageDigestMirrorSet: "" };
    }
    const name = spec.name ?? "image-mirror";
    return {
        registries,
        registriesConf: renderRegistriesConf(name, registries),
        imageDigestMirrorSet: renderImageDigestMirrorSet(name, registries),
    };
}

/** True when `s` is a digest the lock may hold. */
export function isLockDigest(s: unknown): boolean {
    if (typeof s !== "string") return false;
    try {
        parseDigest(s);
        return true;
    } catch {
        return false;
    }
}
