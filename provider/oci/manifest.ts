/**
 * Image manifests and indexes: media types, parsing from the exact bytes, the blobs and children
 * they reference, and platform selection in indexes.
 *
 * The digest of a manifest is the digest of its bytes as stored; nothing here re-serializes one.
 * Supported: Docker image manifest v2 schema 2 and manifest list, OCI image manifest and index.
 * Docker schema 1 (signed, architecture-specific, deprecated) is refused.
 */

import { AirgapError, invalidArgument } from "../errors";
import { digestOf, isDigest } from "./digest";

export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const MEDIA_TYPE_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
export const MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";
export const MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** Media types of single-image manifests. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST];
/** Media types of indexes (multi-platform images). */
export const INDEX_MEDIA_TYPES: readonly string[] = [MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST];
/** Every media type `parseManifest` accepts; also the `Accept` list for registry requests. */
export const SUPPORTED_MANIFEST_MEDIA_TYPES: readonly string[] = [...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES];

export interface Platform {
    readonly os: string;
    readonly architecture: string;
    readonly variant?: string;
    readonly "os.version"?: string;
    readonly "os.features"?: readonly string[];
    readonly features?: readonly string[];
}

/** A content descriptor (image-spec `descriptor.md`), as found in manifests, indexes and `index.json`. */
export interface Descriptor {
    readonly mediaType: string;
    readonly digest: string;
    readonly size: number;
    readonly urls?: readonly string[];
    readonly annotations?: Readonly<Record<string, string>>;
    readonly platform?: Platform;
    readonly artifactType?: string;
}

export interface ImageManifest {
    readonly kind: "manifest";
    readonly mediaType: string;
    /** Digest of the exact bytes parsed. */
    readonly digest: string;
    readonly size: number;
    readonly config: Descriptor;
    readonly layers: readonly Descriptor[];
    readonly subject?: Descriptor;
    readonly artifactType?: string;
    readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
    readonly kind: "index";
    readonly mediaType: string;
    readonly digest: string;
    readonly size: number;
    readonly manifests: readonly Descriptor[];
    readonly subject?: Descriptor;
    readonly artifactType?: string;
    readonly annotations?: Readonly<Record<string, string>>;
}

export type ParsedManifest = ImageManifest | ImageIndex;

/** True for the media types of indexes / manifest lists. */
export function isIndexMediaType(mediaType: string): boolean {
    return INDEX_MEDIA_TYPES.includes(baseMediaType(mediaType));
}

/** `mediaType` without parameters (`; charset=utf-8`) and in lower case. */
export function baseMediaType(mediaType: string): string {
    const semi = mediaType.indexOf(";");
    return (semi < 0 ? mediaType : mediaType.slice(0, semi)).trim().toLowerCase();
}

/**
 * Parses a manifest or index from its exact bytes. `mediaType` is the type it was served or
 * stored with (a `Content-Type` or a descriptor's `mediaType`); when absent, the document's own
 * `mediaType` field, or failing that its structure, decides. ERR_PARSE names the problem: schema 1,
 * an unknown media type (named), a mismatch between the declared and the document's media type,
 * or a malformed field.
 */
export function parseManifest(bytes: Uint8Array, mediaType?: string): ParsedManifest {
    const digest = digestOf(bytes);
    const where = `manifest ${digest}`;
    let doc: unknown;
    try {
        doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${where}: not valid JSON`, { cause });
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected a JSON object`);
    }
    const obj = doc as Record<string, unknown>;
    const declared = mediaType === undefined || mediaType.trim() === "" ? undefined : baseMediaType(mediaType);
    const own = obj["mediaType"];
    if (own !== undefined && typeof own !== "string") {
        throw new AirgapError("ERR_PARSE", `${where}: "mediaType" must be a string`);
    }
    if (
        declared === MEDIA_TYPE_DOCKER_SCHEMA1 ||
        declared === MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED ||
        own === MEDIA_TYPE_DOCKER_SCHEMA1 ||
        own === MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED ||
        obj["schemaVersion"] === 1
    ) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: Docker schema 1 manifests (media type ${declared ?? own ?? MEDIA_TYPE_DOCKER_SCHEMA1}) ` +
                "are not supported; push the image again with a current client to get a schema 2 or OCI manifest",
        );
    }
    if (declared !== undefined && own !== undefined && declared !== own) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: declared media type ${declared} does not match the manifest's own mediaType ${own}`,
        );
    }
    const effective = declared ?? own ?? guessMediaType(obj);
    if (effective === undefined || !SUPPORTED_MANIFEST_MEDIA_TYPES.includes(effective)) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: unsupported manifest media type ${effective === undefined ? "(none, and not recognisable)" : `"${effective}"`}; ` +
                `supported: ${SUPPORTED_MANIFEST_MEDIA_TYPES.join(", ")}`,
        );
    }
    if (obj["schemaVersion"] !== 2) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: schemaVersion must be 2, got ${JSON.stringify(obj["schemaVersion"])}`,
        );
    }
    const common = {
        mediaType: effective,
        digest,
        size: bytes.length,
        ...optionalFields(obj, where),
    };
    if (INDEX_MEDIA_TYPES.includes(effective)) {
        const list = obj["manifests"];
        if (!Array.isArray(list)) {
            throw new AirgapError("ERR_PARSE", `${where}: "manifests" must be an array`);
        }
        return {
            kind: "index",
            ...common,
            manifests: list.map((d, i) => parseDescriptor(d, `${where}: manifests[${i}]`)),
        };
    }
    const layers = obj["layers"];
    if (!Array.isArray(layers)) {
        throw new AirgapError("ERR_PARSE", `${where}: "layers" must be an array`);
    }
    return {
        kind: "manifest",
        ...common,
        config: parseDescriptor(obj["config"], `${where}: config`),
        layers: layers.map((d, i) => parseDescriptor(d, `${where}: layers[${i}]`)),
    };
}

function guessMediaType(obj: Record<string, unknown>): string | undefined {
    if (Array.isArray(obj["manifests"])) {
        return MEDIA_TYPE_OCI_INDEX;
    }
    if (obj["config"] !== undefined && Array.isArray(obj["layers"])) {
        return MEDIA_TYPE_OCI_MANIFEST;
    }
    return undefined;
}

function optionalFields(
    obj: Record<string, unknown>,
    where: string,
): { subject?: Descriptor; artifactType?: string; annotations?: Record<string, string> } {
    const out: { subject?: Descriptor; artifactType?: string; annotations?: Record<string, string> } = {};
    if (obj["subject"] !== undefined) {
        out.subject = parseDescriptor(obj["subject"], `${where}: subject`);
    }
    if (obj["artifactType"] !== undefined) {
        if (typeof obj["artifactType"] !== "string") {
            throw new AirgapError("ERR_PARSE", `${where}: "artifactType" must be a string`);
        }
        out.artifactType = obj["artifactType"];
    }
    if (obj["annotations"] !== undefined) {
        out.annotations = parseStringMap(obj["annotations"], `${where}: annotations`);
    }
    return out;
}

function parseStringMap(value: unknown, where: string): Record<string, string> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected an object of strings`);
    }
    for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") {
            throw new AirgapError("ERR_PARSE", `${where}: value of "${k}" must be a string`);
        }
    }
    return value as Record<string, string>;
}

function stringList(value: unknown, where: string): string[] {
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        throw new AirgapError("ERR_PARSE", `${where}: expected an array of strings`);
    }
    return value as string[];
}

/** Parses and checks one descriptor (digest format, size). ERR_PARSE names `where`. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected a descriptor object`);
    }
    const obj = value as Record<string, unknown>;
    const { mediaType, digest, size } = obj;
    if (typeof mediaType !== "string" || mediaType === "") {
        throw new AirgapError("ERR_PARSE", `${where}: "mediaType" must be a non-empty string`);
    }
    if (typeof digest !== "string" || !isDigest(digest)) {
        throw new AirgapError("ERR_PARSE", `${where}: invalid digest ${JSON.stringify(digest)}`);
    }
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
        throw new AirgapError(
            "ERR_PARSE",
            `${where}: "size" must be a non-negative integer, got ${JSON.stringify(size)}`,
        );
    }
    const desc: {
        mediaType: string;
        digest: string;
        size: number;
        urls?: string[];
        annotations?: Record<string, string>;
        platform?: Platform;
        artifactType?: string;
    } = { mediaType, digest, size };
    if (obj["urls"] !== undefined) {
        desc.urls = stringList(obj["urls"], `${where}: urls`);
    }
    if (obj["annotations"] !== undefined) {
        desc.annotations = parseStringMap(obj["annotations"], `${where}: annotations`);
    }
    if (obj["platform"] !== undefined) {
        desc.platform = parsePlatformObject(obj["platform"], `${where}: platform`);
    }
    if (obj["artifactType"] !== undefined) {
        if (typeof obj["artifactType"] !== "string") {
            throw new AirgapError("ERR_PARSE", `${where}: "artifactType" must be a string`);
        }
        desc.artifactType = obj["artifactType"];
    }
    return desc;
}

function parsePlatformObject(value: unknown, where: string): Platform {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected an object`);
    }
    const obj = value as Record<string, unknown>;
    const { os, architecture, variant } = obj;
    if (typeof os !== "string" || typeof architecture !== "string") {
        throw new AirgapError("ERR_PARSE", `${where}: "os" and "architecture" must be strings`);
    }
    const p: {
        os: string;
        architecture: string;
        variant?: string;
        "os.version"?: string;
        "os.features"?: string[];
        features?: string[];
    } = { os, architecture };
    if (variant !== undefined) {
        if (typeof variant !== "string") {
            throw new AirgapError("ERR_PARSE", `${where}: "variant" must be a string`);
        }
        p.variant = variant;
    }
    if (obj["os.version"] !== undefined) {
        if (typeof obj["os.version"] !== "string") {
            throw new AirgapError("ERR_PARSE", `${where}: "os.version" must be a string`);
        }
        p["os.version"] = obj["os.version"];
    }
    if (obj["os.features"] !== undefined) {
        p["os.features"] = stringList(obj["os.features"], `${where}: os.features`);
    }
    if (obj["features"] !== undefined) {
        p.features = stringList(obj["features"], `${where}: features`);
    }
    return p;
}

/**
 * The blobs a single-image manifest needs, config first. Layers with `urls` (Docker "foreign"
 * layers, which registries do not serve) are left out, as other copy tools do.
 */
export function referencedBlobs(manifest: ImageManifest): Descriptor[] {
    return [manifest.config, ...manifest.layers.filter((l) => l.urls === undefined || l.urls.length === 0)];
}

/** What a parsed manifest refers to: blobs for a manifest, child manifests for an index. */
export function references(parsed: ParsedManifest): { blobs: Descriptor[]; children: Descriptor[] } {
    return parsed.kind === "index"
        ? { blobs: [], children: [...parsed.manifests] }
        : { blobs: referencedBlobs(parsed), children: [] };
}

/** A platform after normalisation: "x86_64" → "amd64", "aarch64" → "arm64" with variant "v8", and so on. */
export interface NormalizedPlatform {
    readonly os: string;
    readonly architecture: string;
    /** "" when the architecture has no variant (or any variant is accepted). */
    readonly variant: string;
}

/** Normalises architecture and variant spellings so that equal platforms compare equal. */
export function normalizePlatform(p: { os: string; architecture: string; variant?: string }): NormalizedPlatform {
    const os = p.os.toLowerCase() === "macos" ? "darwin" : p.os.toLowerCase();
    let architecture = p.architecture.toLowerCase();
    let variant = (p.variant ?? "").toLowerCase();
    switch (architecture) {
        case "i386":
            architecture = "386";
            variant = "";
            break;
        case "x86_64":
        case "x86-64":
        case "amd64":
            architecture = "amd64";
            if (variant === "v1") {
                variant = "";
            }
            break;
        case "aarch64":
        case "arm64":
            architecture = "arm64";
            if (variant === "" || variant === "8" || variant === "v8") {
                variant = "v8";
            }
            break;
        case "armhf":
            architecture = "arm";
            variant = "v7";
            break;
        case "armel":
            architecture = "arm";
            variant = "v6";
            break;
        case "arm":
            if (variant === "") {
                variant = "v7";
            } else if (/^[5-8]$/.test(variant)) {
                variant = `v${variant}`;
            }
            break;
    }
    return { os, architecture, variant };
}

/** Parses "os/arch[/variant]" (e.g. "linux/amd64", "linux/arm64/v8"); ERR_INVALID_ARGUMENT naming `argument`. */
export function parsePlatform(s: string, argument = "platform"): NormalizedPlatform {
    const parts = s.split("/");
    if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[A-Za-z0-9_.-]+$/.test(x))) {
        throw invalidArgument(
            argument,
            `"${s}" is not "os/architecture[/variant]", e.g. "linux/amd64" or "linux/arm64/v8"`,
        );
    }
    return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
}

export function formatPlatform(p: NormalizedPlatform): string {
    return p.variant === "" ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/** True when `candidate` (from an index) satisfies `wanted`; a wanted platform without variant accepts any variant. */
export function platformMatches(wanted: NormalizedPlatform, candidate: Platform): boolean {
    const c = normalizePlatform(candidate);
    return (
        c.os === wanted.os &&
        c.architecture === wanted.architecture &&
        (wanted.variant === "" || c.variant === wanted.variant)
    );
}

/**
 * Picks, for each wanted platform ("linux/amd64", "linux/arm64/v8", ...) in order, the first entry
 * of the index that matches it. Entries are returned once even when several wanted platforms
 * match them; `missing` lists the wanted platforms (as given) that nothing matched.
 */
export function selectPlatforms(
    index: ImageIndex,
    platforms: readonly string[],
): { selected: Descriptor[]; missing: string[] } {
    const selected: Descriptor[] = [];
    const missing: string[] = [];
    platforms.forEach((s, i) => {
        const wanted = parsePlatform(s, `platforms[${i}]`);
        const hit = index.manifests.find((d) => d.platform !== undefined && platformMatches(wanted, d.platform));
        if (hit === undefined) {
            missing.push(s);
        } else if (!selected.includes(hit)) {
            selected.push(hit);
        }
    });
    return { selected, missing };
}
