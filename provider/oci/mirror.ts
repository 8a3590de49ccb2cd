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

import { existsSync, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AirgapError, invalidArgument, isAirgapError } from "../errors";
import { type HeldLock, takeLock } from "../store/lockfile";
import { extractLayoutArchive } from "./archive_src";
import { type CopyImageRequest, type CopyProgress, copyImages } from "./copy";
import { parseManifest, referencedBlobs } from "./manifest";
import { openImageDestination, openImageSource } from "./open";
import { RegistrySession } from "./registry_transport";
import { PROGRESS_INTERVAL_MS } from "../progress";
import { type DockerReference, fullName } from "./reference";
import type { ImageDestination, ImageLocation, ImageSource } from "./types";
import { IMAGE_DEFAULTS, type ImageMirrorSpec, type ImageMirrorState, type PushedImage } from "./mirror_types";
import {
    layoutRefName,
    mirrorReference,
    parseMirrorSource,
    parseMirrorTarget,
    placeOfDestination,
    sourceReference,
} from "./naming";
import { checkCreatedRecords, createdRecord, layoutLockFile, type OwnershipLog, removeOwned } from "./ownership";
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
    /** Where lines about what was left in place go. Defaults to stderr. */
    log?: OwnershipLog;
    /** Milliseconds to wait for another run holding a layout destination. Defaults to 30 minutes. */
    lockTimeoutMs?: number;
}

/** A layout destination is one writer's at a time: another run waits this long, then fails naming the holder. */
export const LAYOUT_LOCK_TIMEOUT_MS = 30 * 60_000;

function stderrLog(destination: string): OwnershipLog {
    return (line) => console.error(`[image ${destination}] ${line}`);
}

/** Takes the locks of the layouts among `stores` (those that exist, unless `create`), in a fixed order. */
async function lockLayouts(stores: Iterable<string>, timeoutMs: number, create: boolean): Promise<HeldLock[]> {
    const held: HeldLock[] = [];
    try {
        for (const store of [...new Set(stores)].sort()) {
            if (store.startsWith("oci:")) {
                const dir = store.slice("oci:".length);
                if (create || existsSync(dir)) {
                    held.push(await takeLock(layoutLockFile(dir), timeoutMs));
                }
            } else if (store.startsWith("oci-archive:")) {
                // An archive is rewritten whole (a temporary tar renamed over it): two writers
                // would each drop the other's images. The lock is beside it, not in it.
                const file = store.slice("oci-archive:".length);
                if (create || existsSync(file)) {
                    held.push(await takeLock(`${file}.airgap.lock`, timeoutMs));
                }
            }
        }
        return held;
    } catch (err) {
        await Promise.allSettled(held.map((l) => l.release()));
        throw err;
    }
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

/**
 * Where each of `images` (source references) lands at `destination`, as `<store>:<tag>`: a place
 * one ImageMirror of a program may write (destroying one that created a tag another also pushed
 * would take the other's image with it).
 */
export function destinationNames(
    images: readonly string[],
    destination: string,
    repositoryPath?: ImageMirrorSpec["repositoryPath"],
): string[] {
    const spec = { images: Object.fromEntries(images.map((key) => [key, ""])), destination, repositoryPath };
    return plan(spec, undefined).map((p) => `${p.store}:${p.tag}`);
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
    checkCreatedRecords(options.previous ?? []);
    const sourceTarget = parseMirrorSource(spec.source);
    const registry = registryOptionsFor(spec, options.registry);
    // One session for the whole sync: a client and connection pool per registry, and one record
    // of which repository holds which blob, so blobs shared between images are mounted.
    const session = new RegistrySession(registry);
    const open = { registry, session };
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
    let locks: HeldLock[] = [];
    try {
        const planned = plan(spec, layoutSourceDir);
        const timeout = options.lockTimeoutMs ?? LAYOUT_LOCK_TIMEOUT_MS;
        locks = await lockLayouts(
            [...planned.map((p) => p.store), ...(options.previous ?? []).map((p) => placeOfDestination(p.destination))],
            timeout,
            true,
        );
        // Whether each archive was there before: an archive this sync creates is the resource's.
        const archiveExisted = new Map(
            planned.flatMap((p) =>
                p.destination.transport === "oci-archive" ? [[p.store, existsSync(p.destination.path)] as const] : [],
            ),
        );
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
            progressIntervalMs: options.progressIntervalMs ?? PROGRESS_INTERVAL_MS,
            // A tag that already names the locked digest holds the image: a no-op sync reads one tag per image.
            skipTagged: true,
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
                created: createdRecord(
                    p.store,
                    r.tagged,
                    r,
                    options.previous ?? [],
                    archiveExisted.get(p.store) === false,
                ),
            });
            manifestBytes += await contentOf(requests[i]!.source, r.manifests, blobs);
        }
        await prune(options.previous ?? [], pushed, {
            registry,
            log: options.log ?? stderrLog(spec.destination),
            archives: false,
        });
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
        await session.close();
        await Promise.allSettled(locks.map((l) => l.release()));
        if (tempDir !== undefined) {
            await fsp.rm(tempDir, { recursive: true, force: true });
        }
    }
}

/** Removes what `old` created and `current` does not hold (same place and digest, or same tag). */
async function prune(
    old: readonly PushedImage[],
    current: readonly PushedImage[],
    options: Parameters<typeof removeOwned>[2],
): Promise<void> {
    const keep = new Set(
        current.flatMap((p) => {
            const store = placeOfDestination(p.destination);
            return [
                ...p.manifests.map((d) => `${store} ${d}`),
                ...(p.tag === undefined ? [] : [`${store} tag ${p.tag}`]),
            ];
        }),
    );
    const gone = old.filter((p) => {
        const store = placeOfDestination(p.destination);
        return (
            (p.tag !== undefined && !keep.has(`${store} tag ${p.tag}`)) ||
            p.manifests.some((d) => !keep.has(`${store} ${d}`))
        );
    });
    await removeOwned(gone, current, options);
}

/**
 * Removes what this resource created (see ownership.ts): registry tags and manifests no other tag
 * needs, its layout entries and the blobs only they referenced, the archive it wrote. What it
 * cannot prove it created is left, with a log line.
 */
export async function removeImages(
    state: Pick<ImageMirrorState, "pushed" | "destination" | "auth" | "tls">,
    options: { registry?: RegistryOverrides; log?: OwnershipLog; lockTimeoutMs?: number } = {},
): Promise<void> {
    const pushed = state.pushed ?? [];
    checkCreatedRecords(pushed);
    const registry = registryOptionsFor(state, options.registry);
    const locks = await lockLayouts(
        pushed.map((p) => placeOfDestination(p.destination)),
        options.lockTimeoutMs ?? LAYOUT_LOCK_TIMEOUT_MS,
        false,
    );
    try {
        await removeOwned(pushed, [], {
            registry,
            log: options.log ?? stderrLog(state.destination),
            archives: true,
        });
    } finally {
        await Promise.allSettled(locks.map((l) => l.release()));
    }
}
