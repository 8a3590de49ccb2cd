/**
 * What an ImageMirror owns at its destinations: recorded while it syncs (`createdRecord`), the only
 * things its prune and destroy remove (`removeOwned`).
 *
 * A tag or layout reference name is the resource's when it did not exist, or named another
 * manifest, before the resource put it; a manifest or layout blob when the destination did not hold
 * it. Ownership carries over from one sync to the next. A state written before ownership was
 * recorded proves nothing: its images are left where they are, with a log line saying so.
 *
 * Removal, per place:
 * - a registry repository: the resource's tags are deleted where the registry supports deleting a
 *   tag; a manifest of the resource is deleted by digest only when no other tag names it, directly
 *   or through an index (a DELETE by digest would remove every tag naming it). Where tag deletes are
 *   refused, a tag of the resource stays for as long as its manifest does, and a log line says so;
 * - a layout: the resource's index.json entries (by reference name, while they name what the
 *   resource put), then the resource's manifests and blobs that no remaining entry references; the
 *   caller holds the layout's lock (`layoutLockFile`);
 * - an archive: the file, when the resource created it (destroy only).
 */

import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { AirgapError, hasCode } from "../errors";
import { forEachLimited } from "../store/concurrency";
import type { CopyImageResult } from "./copy";
import { isDigest } from "./digest";
import {
    ANNOTATION_REF_NAME,
    blobPath,
    type LayoutIndex,
    OCI_INDEX_FILE,
    readLayout,
    serializeLayoutIndex,
    writeLayoutFile,
} from "./layout";
import { isIndexMediaType, parseManifest, referencedBlobs } from "./manifest";
import type { CreatedRecord, PushedImage } from "./mirror_types";
import { placeOfDestination } from "./naming";
import { openImageDestination } from "./open";
import type { RegistryImageDestination } from "./registry_dest";
import type { RegistryOptions } from "./registry_transport";

export type OwnershipLog = (line: string) => void;

/** The lock file guarding a layout's index.json and blobs while a sync or a removal changes them. */
export function layoutLockFile(dir: string): string {
    return path.join(dir, ".airgap.lock");
}

const RECORD_KEYS = new Set(["v", "tag", "manifests", "blobs", "file"]);

function isDigestList(x: unknown): boolean {
    return Array.isArray(x) && x.every((d) => typeof d === "string" && isDigest(d));
}

function isCreatedRecord(x: unknown): x is CreatedRecord {
    if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
    const r = x as Record<string, unknown>;
    return (
        Object.keys(r).every((k) => RECORD_KEYS.has(k)) &&
        r["v"] === 1 &&
        typeof r["tag"] === "boolean" &&
        isDigestList(r["manifests"]) &&
        (r["blobs"] === undefined || isDigestList(r["blobs"])) &&
        (r["file"] === undefined || typeof r["file"] === "boolean")
    );
}

/**
 * Refuses (ERR_PARSE, nothing removed) ownership records of a shape this code does not know, as a
 * newer version may write: guessing what they mean could remove what is not the resource's.
 */
export function checkCreatedRecords(pushed: readonly PushedImage[]): void {
    const bad = pushed.flatMap((p, i) =>
        p.created === undefined || isCreatedRecord(p.created)
            ? []
            : [`pushed[${i}].created (${p.source} at ${p.destination}): ${JSON.stringify(p.created).slice(0, 200)}`],
    );
    if (bad.length > 0) {
        throw new AirgapError(
            "ERR_PARSE",
            `the state holds ownership records of an unknown shape, so nothing was removed:\n  ${bad.join("\n  ")}\n` +
                "They were written by another version of pulumi-airgap: run it with that version, or remove the " +
                "resource from the state (pulumi state delete) and clean the destination by hand.",
        );
    }
}

/** What the images of `previous` at each place (normalised) were recorded to own. */
function ownedBefore(previous: readonly PushedImage[]) {
    const tags = new Set<string>();
    const digests = new Set<string>();
    const files = new Set<string>();
    for (const p of previous) {
        if (!isCreatedRecord(p.created)) continue;
        const store = placeOfDestination(p.destination);
        if (p.created.tag && p.tag !== undefined) tags.add(`${store} ${p.tag}`);
        for (const d of [...p.created.manifests, ...(p.created.blobs ?? [])]) digests.add(`${store} ${d}`);
        if (p.created.file === true) files.add(store);
    }
    return { tags, digests, files };
}

/**
 * The ownership record of one image just copied to `store`: what the copy created, and what
 * `previous` (the last sync's images) owned and the copy found there again.
 * `archiveCreated`: for an archive, whether the file did not exist before this sync.
 */
export function createdRecord(
    store: string,
    tag: string | undefined,
    result: Pick<CopyImageResult, "created" | "blobs" | "manifests">,
    previous: readonly PushedImage[],
    archiveCreated?: boolean,
): CreatedRecord {
    const place = placeOfDestination(store);
    const before = ownedBefore(previous);
    if (store.startsWith("oci-archive:")) {
        const file = archiveCreated === true || before.files.has(place);
        return { v: 1, tag: file, manifests: [], file };
    }
    const mine = (d: string, now: readonly string[] | undefined) =>
        (now ?? []).includes(d) || before.digests.has(`${place} ${d}`);
    const created = result.created;
    const record: CreatedRecord = {
        v: 1,
        tag: tag !== undefined && (created?.tag === true || before.tags.has(`${place} ${tag}`)),
        manifests: [...new Set(result.manifests)].filter((d) => mine(d, created?.manifests)),
    };
    if (store.startsWith("oci:")) {
        record.blobs = (result.blobs ?? []).filter((b) => mine(b, created?.blobs));
    }
    return record;
}

/** Everything `removeOwned` needs about the places it works on. */
export interface RemoveOptions {
    readonly registry: (domain: string) => RegistryOptions;
    readonly log: OwnershipLog;
    /** Removing archives too (destroy); a prune leaves them, since a sync rewrites them whole. */
    readonly archives: boolean;
}

/**
 * Removes what the images of `gone` created and the images of `kept` (same or other places) do not
 * hold. Layout callers hold the layouts' locks. Refuses unknown ownership records first.
 */
export async function removeOwned(
    gone: readonly PushedImage[],
    kept: readonly PushedImage[],
    options: RemoveOptions,
): Promise<void> {
    checkCreatedRecords(gone);
    const keptKeys = new Set<string>();
    for (const p of kept) {
        const store = placeOfDestination(p.destination);
        if (p.tag !== undefined) keptKeys.add(`${store} tag ${p.tag}`);
        for (const d of p.manifests) keptKeys.add(`${store} ${d}`);
    }
    const byStore = new Map<string, PushedImage[]>();
    for (const p of gone) {
        const store = placeOfDestination(p.destination);
        byStore.set(store, [...(byStore.get(store) ?? []), p]);
    }
    for (const [store, images] of byStore) {
        const unproven = images.filter((p) => p.created === undefined);
        if (unproven.length > 0) {
            options.log(
                `left ${unproven.length} image(s) at ${store} that this resource cannot prove it created ` +
                    `(its state predates ownership records): ${unproven.map((p) => p.tag ?? p.source).join(", ")}`,
            );
        }
        const owned = images.filter((p) => p.created !== undefined);
        if (owned.length === 0) continue;
        if (store.startsWith("docker://")) {
            await removeFromRegistry(store, owned, keptKeys, options);
        } else if (store.startsWith("oci:")) {
            await removeFromLayout(store.slice("oci:".length), store, owned, keptKeys, options.log);
        } else if (store.startsWith("oci-archive:") && options.archives) {
            const file = store.slice("oci-archive:".length);
            if (owned.every((p) => p.created?.file === true)) {
                await fsp.rm(file, { force: true });
            } else {
                options.log(`left ${file}: it existed before this resource wrote it`);
            }
        }
    }
}

/** Digests named by `tags` of a registry repository, with the children of indexes among them. */
async function liveInRegistry(dest: RegistryImageDestination, tags: readonly string[]): Promise<Map<string, string>> {
    const live = new Map<string, string>(); // digest → a tag that keeps it
    const walk = async (digest: string, mediaType: string, tag: string, depth: number): Promise<void> => {
        if (live.has(digest)) return;
        live.set(digest, tag);
        if (depth < 4 && isIndexMediaType(mediaType)) {
            const index = parseManifest((await dest.getManifest(digest)).bytes, mediaType);
            if (index.kind === "index") {
                for (const child of index.manifests) {
                    await walk(child.digest, child.mediaType, tag, depth + 1);
                }
            }
        }
    };
    await forEachLimited(tags, 4, async (tag) => {
        const head = await dest.manifestHead(tag);
        if (head !== undefined) await walk(head.digest, head.mediaType, tag, 0);
    });
    return live;
}

async function removeFromRegistry(
    store: string,
    images: readonly PushedImage[],
    keptKeys: ReadonlySet<string>,
    options: RemoveOptions,
): Promise<void> {
    const dest = (await openImageDestination(store, { registry: options.registry })) as RegistryImageDestination;
    try {
        // Tags: the resource's, still naming what it put, not wanted by a kept image.
        const ownTags = new Map<string, string | undefined>(); // tag → the digest it should name
        for (const p of images) {
            if (p.tag === undefined || keptKeys.has(`${store} tag ${p.tag}`)) continue;
            if (p.created?.tag !== true) {
                options.log(`left ${store}:${p.tag}: the tag was there before this resource pushed it`);
                continue;
            }
            ownTags.set(p.tag, p.top);
        }
        const stuck = new Map<string, string>(); // own tags the registry would not delete → digest
        let tagDeletes = true;
        for (const [tag, top] of ownTags) {
            const at = await dest.tagDigest(tag);
            if (at === undefined) continue;
            if (top !== undefined && at !== top) {
                options.log(`left ${store}:${tag}: it names ${at} now, not ${top} which this resource put`);
                continue;
            }
            if (tagDeletes) {
                const done = await dest.deleteTag(tag);
                if (done !== "unsupported") continue;
                tagDeletes = false;
            }
            stuck.set(tag, at);
        }
        // Manifests: the resource's, top first, unless a kept image or another tag still needs them.
        const ownManifests = [...new Set(images.flatMap((p) => [...(p.created?.manifests ?? [])].reverse()))].filter(
            (d) => !keptKeys.has(`${store} ${d}`),
        );
        if (ownManifests.length === 0 && stuck.size === 0) return;
        const others = (await dest.listTags()).filter((t) => !stuck.has(t));
        const live = await liveInRegistry(dest, others);
        const deleted = new Set<string>();
        for (const d of ownManifests) {
            const keeper = live.get(d);
            if (keeper !== undefined) {
                options.log(`left ${store}@${d}: tag ${keeper} (not this resource's) still names it`);
                continue;
            }
            await dest.deleteManifest(d);
            deleted.add(d);
        }
        for (const [tag, d] of stuck) {
            if (!deleted.has(d)) {
                options.log(
                    `left ${store}:${tag}: the registry refuses deleting a tag alone, and its manifest ${d} ` +
                        (live.has(d) ? `is still named by tag ${live.get(d)}` : "was there before this resource"),
                );
            }
        }
    } finally {
        await dest.close();
    }
}

/** Manifests and blobs the entries of `index` reference (what a layout still needs). */
async function liveInLayout(dir: string, roots: readonly string[]): Promise<Set<string>> {
    const live = new Set<string>();
    const walk = async (digest: string, depth: number): Promise<void> => {
        if (live.has(digest)) return;
        live.add(digest);
        let bytes: Buffer;
        try {
            bytes = await fsp.readFile(blobPath(dir, digest));
        } catch {
            return; // missing: nothing below it to keep
        }
        let parsed: ReturnType<typeof parseManifest>;
        try {
            parsed = parseManifest(bytes);
        } catch {
            return; // not a manifest this code reads: keep it, and what it may reference is unknown
        }
        if (parsed.kind === "index") {
            if (depth < 4) for (const c of parsed.manifests) await walk(c.digest, depth + 1);
        } else {
            for (const b of referencedBlobs(parsed)) live.add(b.digest);
        }
    };
    for (const d of roots) await walk(d, 0);
    return live;
}

async function removeFromLayout(
    dir: string,
    store: string,
    images: readonly PushedImage[],
    keptKeys: ReadonlySet<string>,
    log: OwnershipLog,
): Promise<void> {
    let index: LayoutIndex;
    try {
        index = await readLayout(dir);
    } catch (err) {
        if (hasCode(err, "ERR_NOT_FOUND")) return;
        throw err;
    }
    const drop = new Map<string, string | undefined>(); // reference name → the digest it should name
    for (const p of images) {
        if (p.tag === undefined || keptKeys.has(`${store} tag ${p.tag}`)) continue;
        if (p.created?.tag === true) drop.set(p.tag, p.top);
        else log(`left ${store} entry ${p.tag}: it was there before this resource put it`);
    }
    const manifests = index.manifests.filter((d) => {
        const name = d.annotations?.[ANNOTATION_REF_NAME];
        if (name === undefined || !drop.has(name)) return true;
        const top = drop.get(name);
        if (top !== undefined && d.digest !== top) {
            log(`left ${store} entry ${name}: it names ${d.digest} now, not ${top} which this resource put`);
            return true;
        }
        return false;
    });
    if (manifests.length !== index.manifests.length) {
        await writeLayoutFile(path.join(dir, OCI_INDEX_FILE), serializeLayoutIndex({ manifests, raw: index.raw }));
    }
    const keptRoots = [...keptKeys].flatMap((k) => (k.startsWith(`${store} sha`) ? [k.slice(store.length + 1)] : []));
    const live = await liveInLayout(dir, [...manifests.map((d) => d.digest), ...keptRoots]);
    const own = new Set(images.flatMap((p) => [...(p.created?.manifests ?? []), ...(p.created?.blobs ?? [])]));
    for (const d of own) {
        if (!live.has(d)) await fsp.rm(blobPath(dir, d), { force: true });
    }
}
