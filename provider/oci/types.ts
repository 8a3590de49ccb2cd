/**
 * Shared shapes of the image-mirror engine: image locations, and the source and destination
 * interfaces every transport implements. The copy code sees only `ImageSource` and
 * `ImageDestination`; a location string (`docker://...`, `oci:...`, `oci-archive:...`) opens one.
 */

import type { Readable } from "node:stream";
import type { DockerReference } from "./reference";

/** An image in a registry: `docker://host[:port]/repo[:tag][@digest]`. */
export interface DockerLocation {
    readonly transport: "docker";
    readonly reference: DockerReference;
}

/** An image in an OCI image layout directory: `oci:/path/to/layout[:reference]`. */
export interface OciLayoutLocation {
    readonly transport: "oci";
    /** The layout directory, as written (not resolved against the working directory). */
    readonly path: string;
    /** The `org.opencontainers.image.ref.name` of the image in `index.json`, when given. */
    readonly reference?: string;
}

/** An image in a tar archive of an OCI image layout: `oci-archive:/path/file.tar[:reference]`. */
export interface OciArchiveLocation {
    readonly transport: "oci-archive";
    readonly path: string;
    readonly reference?: string;
}

export type ImageLocation = DockerLocation | OciLayoutLocation | OciArchiveLocation;

export type TransportName = ImageLocation["transport"];

/** A manifest or index exactly as stored: its digest is the digest of these bytes. */
export interface ManifestBlob {
    readonly bytes: Buffer;
    readonly mediaType: string;
    /** Digest of `bytes` (sha256 unless the manifest was asked for by a sha512 digest). */
    readonly digest: string;
}

/** A blob being read. */
export interface BlobReader {
    readonly stream: Readable;
    /** Size in bytes, when the source knows it. */
    readonly size?: number;
}

/**
 * Where images are read from.
 *
 * Implementations MUST return manifests as the exact stored bytes, never re-serialized, and MUST
 * verify them against their digest before returning them. They SHOULD NOT verify blobs: the
 * destination does so while writing (`ImageDestination.putBlob`), which avoids reading twice.
 * A source MAY be used for several concurrent reads; `close` MUST be called once, after all
 * streams returned by `getBlob` have been consumed or destroyed.
 */
export interface ImageSource {
    readonly location: ImageLocation;
    /**
     * Without `digest`: the manifest or index the location names (its tag, or the single image of
     * a layout when the location has no reference). With `digest`: that manifest (a child of an
     * index, or a pinned image). ERR_NOT_FOUND when it is not there; ERR_VERIFICATION when the
     * stored bytes do not match the digest; ERR_PARSE for schema1 and unknown media types.
     */
    getManifest(digest?: string): Promise<ManifestBlob>;
    /** A stream of the blob's bytes. ERR_NOT_FOUND when absent. The caller MUST consume or destroy the stream. */
    getBlob(digest: string): Promise<BlobReader>;
    /** True when the blob is present. */
    hasBlob(digest: string): Promise<boolean>;
    /** The tags (reference names) this source holds for the location's repository, sorted. */
    listTags(): Promise<string[]>;
    close(): Promise<void>;
}

/**
 * Where images are written to.
 *
 * The copy code MUST put blobs before the manifests that reference them, and child manifests
 * before the index that references them. Implementations MUST verify every blob's size and digest
 * while streaming it, and MUST NOT make a blob visible under its digest before it verified
 * (write aside, then rename). They MUST store manifest bytes exactly as given.
 * `commit` MUST be called after the last `putManifest`; an implementation MAY keep everything
 * aside until then (archives do), so `close` without `commit` discards what was not yet committed.
 */
export interface ImageDestination {
    readonly location: ImageLocation;
    /** True when a verified copy of the blob is already there (the copy code then skips it). */
    hasBlob(digest: string): Promise<boolean>;
    /**
     * Stores the blob read from `stream`, verified against `expected` while streaming; ERR_VERIFICATION
     * when it does not match (nothing is stored then), ERR_IO when it cannot be written (for instance
     * because the disk is too full for `expected.size`). When the blob is already present the stream
     * is destroyed without being read. The stream is always consumed or destroyed.
     */
    putBlob(stream: Readable, expected: { readonly digest: string; readonly size?: number }): Promise<void>;
    /**
     * Stores a manifest or index (exact bytes) and returns its digest.
     * `tagOrDigest` undefined: named as the location says (its tag or reference);
     * a tag: named by that tag; a digest: stored by digest only (a child of an index), and it MUST
     * equal the digest of `bytes` (ERR_VERIFICATION otherwise).
     * Implementations SHOULD refuse (ERR_VERIFICATION) a manifest whose blobs or children are absent.
     */
    putManifest(bytes: Buffer, mediaType: string, tagOrDigest?: string): Promise<string>;
    /** The tags (reference names) the destination holds for the location's repository, sorted. */
    listTags(): Promise<string[]>;
    /**
     * True when the manifest is already stored under its digest. Destinations that implement it
     * (and `tagDigest`) let the copy record what it created, as opposed to what was there.
     */
    hasManifest?(digest: string): Promise<boolean>;
    /** The digest the tag (reference name) names now; undefined when there is no such tag. */
    tagDigest?(tag: string): Promise<string | undefined>;
    /** Makes everything put so far durable and visible. */
    commit(): Promise<void>;
    close(): Promise<void>;
}
