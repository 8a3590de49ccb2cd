/**
 * The OCI image layout on disk (image-spec `image-layout.md`):
 *
 *     <dir>/oci-layout            {"imageLayoutVersion": "1.0.0"}
 *     <dir>/index.json            an image index; entries named by `org.opencontainers.image.ref.name`
 *     <dir>/blobs/<alg>/<hex>     content-addressed blobs (layers, configs, manifests, indexes)
 *
 * Shared by the layout source and destination and by the archive transport.
 */

import * as path from "node:path";
import { AirgapError, isAirgapError } from "../errors";
import { readFileCapped } from "../http/body";
import { writeFileAtomic } from "../store/atomic";
import { parseDigest } from "./digest";
import { type Descriptor, MEDIA_TYPE_OCI_INDEX, parseDescriptor } from "./manifest";

export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_INDEX_FILE = "index.json";
export const OCI_BLOBS_DIR = "blobs";
export const OCI_LAYOUT_VERSION = "1.0.0";
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** `oci-layout` holds one short JSON object; more than this is refused. */
export const MAX_LAYOUT_FILE_SIZE = 64 * 1024;
/** `index.json` (of a layout or an archive) larger than this is refused: some 100 000 entries. */
export const MAX_LAYOUT_INDEX_SIZE = 32 * 1024 * 1024;

// image-spec annotations.md: the grammar of `org.opencontainers.image.ref.name`.
const REF_COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const REF_NAME_RE = new RegExp(`^${REF_COMPONENT}(?:/${REF_COMPONENT})*$`);

/** True when `name` is a valid `org.opencontainers.image.ref.name` (e.g. "app-1.0", "v1", "org/app:1"). */
export function isValidRefName(name: string): boolean {
    return REF_NAME_RE.test(name);
}

/** The path of a blob inside a layout. Throws ERR_PARSE for an invalid digest (so no path escapes the layout). */
export function blobPath(dir: string, digest: string): string {
    const d = parseDigest(digest);
    return path.join(dir, OCI_BLOBS_DIR, d.algorithm, d.hex);
}

/** `index.json` as read: `manifests` parsed, every other field kept as it was. */
export interface LayoutIndex {
    readonly manifests: readonly Descriptor[];
    /** The whole JSON object, so that fields this code does not know survive a rewrite. */
    readonly raw: Readonly<Record<string, unknown>>;
}

export function emptyLayoutIndex(): LayoutIndex {
    return { manifests: [], raw: { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] } };
}

/** Parses `index.json` bytes; ERR_PARSE naming `where` when it is not a valid index. */
export function parseLayoutIndex(bytes: Buffer, where: string): LayoutIndex {
    let raw: unknown;
    try {
        raw = JSON.parse(bytes.toString("utf8"));
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${where}: not valid JSON`, { cause });
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected a JSON object`);
    }
    const obj = raw as Record<string, unknown>;
    if (obj["schemaVersion"] !== 2) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: schemaVersion must be 2, got ${JSON.stringify(obj["schemaVersion"])}`,
        );
    }
    const list = obj["manifests"] ?? [];
    if (!Array.isArray(list)) {
        throw new AirgapError("ERR_PARSE", `${where}: "manifests" must be an array`);
    }
    const manifests = list.map((d, i) => parseDescriptor(d, `${where}: manifests[${i}]`));
    return { manifests, raw: obj };
}

export function serializeLayoutIndex(index: LayoutIndex): Buffer {
    const raw: Record<string, unknown> = { ...index.raw, manifests: index.manifests };
    if (raw["schemaVersion"] === undefined) {
        raw["schemaVersion"] = 2;
    }
    return Buffer.from(JSON.stringify(raw), "utf8");
}

/** The entries of `index` named `refName`. */
export function findByRefName(index: LayoutIndex, refName: string): Descriptor[] {
    return index.manifests.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] === refName);
}

/** The reference names in `index`, sorted and without duplicates. */
export function refNames(index: LayoutIndex): string[] {
    const names = new Set<string>();
    for (const d of index.manifests) {
        const name = d.annotations?.[ANNOTATION_REF_NAME];
        if (name !== undefined) {
            names.add(name);
        }
    }
    return [...names].sort();
}

/**
 * The index with `desc` added. A named descriptor replaces every entry of the same name; an
 * unnamed one replaces an unnamed entry of the same digest. Pure.
 */
export function withIndexEntry(index: LayoutIndex, desc: Descriptor): LayoutIndex {
    const name = desc.annotations?.[ANNOTATION_REF_NAME];
    const kept = index.manifests.filter((d) => {
        const other = d.annotations?.[ANNOTATION_REF_NAME];
        if (name !== undefined) {
            return other !== name;
        }
        return !(other === undefined && d.digest === desc.digest);
    });
    return { manifests: [...kept, desc], raw: index.raw };
}

/** Reads and checks `oci-layout` and `index.json` of the layout at `dir`. ERR_NOT_FOUND when it is no layout. */
export async function readLayout(dir: string): Promise<LayoutIndex> {
    const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
    let text: string;
    try {
        text = (await readFileCapped(layoutFile, MAX_LAYOUT_FILE_SIZE, layoutFile)).toString("utf8");
    } catch (cause) {
        if (isAirgapError(cause)) {
            throw cause;
        }
        if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
            throw new AirgapError("ERR_NOT_FOUND", `${dir} is not an OCI image layout: ${layoutFile} is missing`, {
                cause,
            });
        }
        throw new AirgapError("ERR_IO", `reading ${layoutFile}`, { cause });
    }
    checkLayoutFile(text, layoutFile);
    const indexFile = path.join(dir, OCI_INDEX_FILE);
    let bytes: Buffer;
    try {
        bytes = await readFileCapped(indexFile, MAX_LAYOUT_INDEX_SIZE, indexFile);
    } catch (cause) {
        if (isAirgapError(cause)) {
            throw cause;
        }
        if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
            throw new AirgapError("ERR_NOT_FOUND", `${dir} is not an OCI image layout: ${indexFile} is missing`, {
                cause,
            });
        }
        throw new AirgapError("ERR_IO", `reading ${indexFile}`, { cause });
    }
    return parseLayoutIndex(bytes, indexFile);
}

export function checkLayoutFile(text: string, where: string): void {
    let version: unknown;
    try {
        version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${where}: not valid JSON`, { cause });
    }
    if (typeof version !== "string" || !/^1\.\d+\.\d+$/.test(version)) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: unsupported imageLayoutVersion ${JSON.stringify(version)} (supported: 1.x.y)`,
        );
    }
}

/**
 * Writes the small, in-memory `data` (`oci-layout`, `index.json`, manifests) to `file` atomically
 * with the shared `store/atomic` helper; ERR_IO naming the file on failure.
 */
export async function writeLayoutFile(file: string, data: Buffer | string): Promise<void> {
    try {
        writeFileAtomic(file, data);
    } catch (cause) {
        throw new AirgapError("ERR_IO", `writing ${file}`, { cause });
    }
}
