/** What an ImageMirror destination really holds, for refresh (drift detection). */

import { promises as fsp } from "node:fs";
import { hasCode } from "../errors";
import { blobPath, findByRefName, type LayoutIndex, readLayout } from "./layout";
import { openImageSource } from "./open";
import type { RegistryOptions } from "./registry_transport";
import type { ImageLock, ImageMirrorState, PushedImage } from "./mirror_types";
import { readArchiveIndex, registryOptionsFor, type RegistryOverrides, sortedLock } from "./lock";

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
    for (const d of new Set(p.manifests)) {
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
        for (const d of new Set(p.manifests)) {
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
