/**
 * The benchmark's image set, written as one OCI image layout that holds every image under its own
 * reference name (`oci:DIR:app-NN-v1` for skopeo).
 *
 * Layers are gzip'd tars of one file of pseudo-random bytes (AES-CTR over zeros, keyed by the
 * layer's name), so they are incompressible, the same on every run, and a registry cannot store or
 * serve them any cheaper than their size. Each platform image has three layers: a base shared by
 * a third of the images, a runtime shared by a fifth of them, and an application layer of its
 * own. Every third image is an index (linux/amd64 + linux/arm64/v8); the others are single
 * linux/amd64 manifests.
 */

import { createCipheriv, createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { constants, gzipSync } from "node:zlib";
import {
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
} from "../../provider/oci/manifest";

export interface ImageSetOptions {
    /** Number of images. */
    readonly images: number;
    /** Scales every layer size (1 = bases 4 MiB, runtimes 2 MiB, applications 1–3 MiB). */
    readonly scale: number;
}

export interface GeneratedImage {
    /** Repository path below a registry, e.g. "src/app-07". */
    readonly repository: string;
    readonly tag: string;
    /** The reference name in the layout's `index.json`, e.g. "app-07-v1". */
    readonly refName: string;
    /** Digest of the top manifest or index. */
    readonly digest: string;
    readonly mediaType: string;
    /** Digests of the child manifests, for an index. */
    readonly children: readonly string[];
}

export interface GeneratedSet {
    readonly layoutDir: string;
    readonly images: readonly GeneratedImage[];
    /** Distinct blobs (layers and configs), with their total size. */
    readonly blobCount: number;
    readonly blobBytes: number;
    /** Blob bytes summed over every image, counting a shared blob once per image using it. */
    readonly referencedBytes: number;
}

interface Blob {
    readonly digest: string;
    readonly size: number;
    readonly mediaType: string;
}

const MiB = 1024 * 1024;

function sha256(bytes: Buffer): string {
    return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** `size` incompressible bytes, always the same for the same `name`. */
export function pseudoRandomBytes(name: string, size: number): Buffer {
    const key = createHash("sha256").update(`pulumi-airgap bench ${name}`).digest();
    const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
    return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** A ustar archive holding one regular file. */
export function singleFileTar(name: string, content: Buffer): Buffer {
    const header = Buffer.alloc(512);
    const field = (offset: number, length: number, value: string) => {
        header.write(value, offset, length, "ascii");
    };
    const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, "0")}\0`;
    field(0, 100, name);
    field(100, 8, octal(0o644, 8));
    field(108, 8, octal(0, 8));
    field(116, 8, octal(0, 8));
    field(124, 12, octal(content.length, 12));
    field(136, 12, octal(1_700_000_000, 12));
    field(148, 8, "        ");
    field(156, 1, "0");
    field(257, 6, "ustar\0");
    field(263, 2, "00");
    let sum = 0;
    for (const b of header) sum += b;
    field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
    const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
    return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** Writes the image set into `dir` (an OCI layout) and returns what it holds. */
export async function generateImageSet(dir: string, options: ImageSetOptions): Promise<GeneratedSet> {
    const blobDir = join(dir, "blobs", "sha256");
    await mkdir(blobDir, { recursive: true });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));

    const blobs = new Map<string, Blob>();
    const writeBlob = async (bytes: Buffer, mediaType: string): Promise<Blob> => {
        const digest = sha256(bytes);
        const blob = { digest, size: bytes.length, mediaType };
        if (!blobs.has(digest)) {
            blobs.set(digest, blob);
            await writeFile(join(blobDir, digest.slice("sha256:".length)), bytes);
        }
        return blob;
    };
    const layers = new Map<string, { blob: Blob; diffId: string }>();
    const layer = async (name: string, size: number) => {
        let made = layers.get(name);
        if (made === undefined) {
            const tar = singleFileTar(`opt/${name}.bin`, pseudoRandomBytes(name, Math.round(size)));
            // Level 1: the content does not compress anyway; only the framing has to be gzip.
            const gz = gzipSync(tar, { level: constants.Z_BEST_SPEED });
            made = { blob: await writeBlob(gz, MEDIA_TYPE_OCI_LAYER_GZIP), diffId: sha256(tar) };
            layers.set(name, made);
        }
        return made;
    };

    const images: GeneratedImage[] = [];
    const refs: object[] = [];
    let referencedBytes = 0;
    for (let i = 0; i < options.images; i++) {
        const id = String(i).padStart(2, "0");
        const multiArch = i % 3 === 0;
        const arches = multiArch
            ? [
                  { architecture: "amd64", variant: undefined },
                  { architecture: "arm64", variant: "v8" },
              ]
            : [{ architecture: "amd64", variant: undefined }];
        const manifests: (Blob & { platform: object })[] = [];
        for (const { architecture, variant } of arches) {
            const parts = [
                await layer(`base-${i % 3}-${architecture}`, 4 * MiB * options.scale),
                await layer(`runtime-${i % 5}-${architecture}`, 2 * MiB * options.scale),
                await layer(`app-${id}-${architecture}`, (1 + (i % 5) / 2) * MiB * options.scale),
            ];
            const config = await writeBlob(
                Buffer.from(
                    JSON.stringify({
                        created: "2024-01-01T00:00:00Z",
                        architecture,
                        ...(variant === undefined ? {} : { variant }),
                        os: "linux",
                        config: { Cmd: [`/opt/app-${id}.bin`] },
                        rootfs: { type: "layers", diff_ids: parts.map((p) => p.diffId) },
                    }),
                ),
                MEDIA_TYPE_OCI_CONFIG,
            );
            const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });
            const manifest = await writeBlob(
                Buffer.from(
                    JSON.stringify({
                        schemaVersion: 2,
                        mediaType: MEDIA_TYPE_OCI_MANIFEST,
                        config: descriptor(config),
                        layers: parts.map((p) => descriptor(p.blob)),
                    }),
                ),
                MEDIA_TYPE_OCI_MANIFEST,
            );
            referencedBytes += config.size + parts.reduce((n, p) => n + p.blob.size, 0);
            manifests.push({
                ...manifest,
                platform: { architecture, os: "linux", ...(variant === undefined ? {} : { variant }) },
            });
        }
        const top = multiArch
            ? await writeBlob(
                  Buffer.from(
                      JSON.stringify({
                          schemaVersion: 2,
                          mediaType: MEDIA_TYPE_OCI_INDEX,
                          manifests: manifests.map((m) => ({
                              mediaType: m.mediaType,
                              digest: m.digest,
                              size: m.size,
                              platform: m.platform,
                          })),
                      }),
                  ),
                  MEDIA_TYPE_OCI_INDEX,
              )
            : manifests[0]!;
        const refName = `app-${id}-v1`;
        refs.push({
            mediaType: top.mediaType,
            digest: top.digest,
            size: top.size,
            annotations: { "org.opencontainers.image.ref.name": refName },
        });
        images.push({
            repository: `src/app-${id}`,
            tag: "v1",
            refName,
            digest: top.digest,
            mediaType: top.mediaType,
            children: multiArch ? manifests.map((m) => m.digest) : [],
        });
    }
    await writeFile(
        join(dir, "index.json"),
        JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: refs }),
    );
    const contentBlobs = [...blobs.values()].filter(
        (b) => b.mediaType === MEDIA_TYPE_OCI_LAYER_GZIP || b.mediaType === MEDIA_TYPE_OCI_CONFIG,
    );
    return {
        layoutDir: dir,
        images,
        blobCount: contentBlobs.length,
        blobBytes: contentBlobs.reduce((n, b) => n + b.size, 0),
        referencedBytes,
    };
}
