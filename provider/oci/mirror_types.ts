/** The ImageMirror inputs and state, shared by its steps. */

import type { RegistryMirrorSpec } from "../host/types";
import type { RegistryMode } from "./reference";

/** Defaults of an ImageMirror, defined once: the SDK documents them, the engine applies them. */
export const IMAGE_DEFAULTS = {
    repositoryPath: "keep-registry",
    /** Blobs copied at once. */
    concurrency: 4,
} as const;

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
    /**
     * What this resource created there, the only things its prune and destroy may remove. Absent
     * in states written before it was recorded: then nothing is known to be this resource's.
     */
    created?: CreatedRecord;
}

/** What one image of a resource created at its destination (see `PushedImage.created`). */
export interface CreatedRecord {
    /** The record's format. */
    v: 1;
    /** The tag (or layout reference name) did not exist, or named another manifest, before this resource put it. */
    tag: boolean;
    /** Manifests (of `PushedImage.manifests`) the destination repository or layout did not hold before. */
    manifests: string[];
    /** Layouts: blobs (layers, configs) the layout did not hold before. */
    blobs?: string[];
    /** Archives: the archive file did not exist before this resource wrote it. */
    file?: boolean;
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
