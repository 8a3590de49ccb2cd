/**
 * The ImageMirror chain of named steps (`skopeo copy --all --preserve-digests`, `skopeo sync`,
 * oc-mirror's mirror-to-disk and disk-to-mirror):
 *
 *   resolveImageLock (lock.ts: program time, preview too)
 *     → syncImages (here: open → copy → commit → prune)
 *     → readImages (drift.ts: refresh, what the destination really holds) | removeImages (here: destroy)
 *   hostConfigFor (hostconfig.ts): the host configuration pointing clients at the mirror
 *   (registries.conf v2, OpenShift ImageDigestMirrorSet, HostMirrorConfig `registries` entries)
 *
 * The inputs and state are in mirror_types.ts, locations and names in naming.ts. This module is
 * the ImageMirror engine's entry point: it re-exports those.
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

import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AirgapError, hasCode, invalidArgument, isAirgapError } from "../errors";
import { extractLayoutArchive } from "./archive_src";
import { type CopyImageRequest, type CopyProgress, copyImages } from "./copy";
import {
    ANNOTATION_REF_NAME,
    type LayoutIndex,
    OCI_INDEX_FILE,
    readLayout,
    serializeLayoutIndex,
    writeLayoutFile,
} from "./layout";
import { parseManifest, referencedBlobs } from "./manifest";
import { openImageDestination, openImageSource } from "./open";
import { type DockerReference, fullName } from "./reference";
import type { RegistryOptions } from "./registry_transport";
import type { ImageDestination, ImageLocation, ImageSource } from "./types";
import { IMAGE_DEFAULTS, type ImageMirrorSpec, type ImageMirrorState, type PushedImage } from "./mirror_types";
import { layoutRefName, mirrorReference, parseMirrorSource, parseMirrorTarget, sourceReference } from "./naming";
import { registryOptionsFor, type RegistryOverrides } from "./lock";
import { hostConfigFor } from "./hostconfig";

export * from "./drift";
export * from "./hostconfig";
export * from "./lock";
export * from "./mirror_types";
export * from "./naming";

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
    const mode = spec.repositoryPath ?? IMAGE_DEFAULTS.repositoryPath;
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
        try {
            await extractLayoutArchive(sourceTarget.path, tempDir);
        } catch (err) {
            await fsp.rm(tempDir, { recursive: true, force: true });
            throw err;
        }
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
            concurrency: spec.concurrency ?? IMAGE_DEFAULTS.concurrency,
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
        await writeLayoutFile(path.join(dir, OCI_INDEX_FILE), serializeLayoutIndex({ manifests, raw: index.raw }));
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
