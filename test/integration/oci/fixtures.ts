/**
 * Small images built in tests: a gzip layer (made with the system `tar` and node's zlib), an OCI
 * config and manifest, and multi-platform indexes. Plus helpers to run skopeo, the judge of
 * what the layout transport writes.
 */

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { digestOf } from "../../../provider/oci/digest";
import {
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
} from "../../../provider/oci/manifest";
import type { ImageDestination } from "../../../provider/oci/types";

export interface Blob {
    readonly bytes: Buffer;
    readonly digest: string;
    readonly mediaType: string;
}

export interface TestImage {
    readonly layers: readonly Blob[];
    readonly config: Blob;
    readonly manifest: Blob;
}

function blob(bytes: Buffer, mediaType: string): Blob {
    return { bytes, digest: digestOf(bytes), mediaType };
}

/** A gzip-compressed tar holding `files` (name → content), made with the system `tar`. */
export function makeLayer(files: Record<string, string>): { gz: Blob; diffId: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-oci-layer-"));
    try {
        for (const [name, content] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
            fs.writeFileSync(path.join(dir, name), content);
        }
        const tar = execFileSync("tar", [
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--mtime=@0",
            "-C",
            dir,
            "-cf",
            "-",
            ".",
        ]);
        return { gz: blob(gzipSync(tar), MEDIA_TYPE_OCI_LAYER_GZIP), diffId: digestOf(tar) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** An OCI image for `architecture` with the given layers; `spacing` changes the manifest bytes, not its meaning. */
export function makeImage(
    layers: readonly { gz: Blob; diffId: string }[],
    architecture = "amd64",
    variant?: string,
    spacing = 0,
): TestImage {
    const config = blob(
        Buffer.from(
            JSON.stringify({
                architecture,
                ...(variant === undefined ? {} : { variant }),
                os: "linux",
                config: { Cmd: ["/bin/true"] },
                rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
            }),
        ),
        MEDIA_TYPE_OCI_CONFIG,
    );
    const manifest = blob(
        Buffer.from(
            JSON.stringify(
                {
                    schemaVersion: 2,
                    mediaType: MEDIA_TYPE_OCI_MANIFEST,
                    config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
                    layers: layers.map((l) => ({
                        mediaType: l.gz.mediaType,
                        digest: l.gz.digest,
                        size: l.gz.bytes.length,
                    })),
                },
                null,
                spacing,
            ),
        ),
        MEDIA_TYPE_OCI_MANIFEST,
    );
    return { layers: layers.map((l) => l.gz), config, manifest };
}

export function makeIndex(entries: readonly { image: TestImage; architecture: string; variant?: string }[]): Blob {
    return blob(
        Buffer.from(
            JSON.stringify({
                schemaVersion: 2,
                mediaType: MEDIA_TYPE_OCI_INDEX,
                manifests: entries.map((e) => ({
                    mediaType: e.image.manifest.mediaType,
                    digest: e.image.manifest.digest,
                    size: e.image.manifest.bytes.length,
                    platform: {
                        architecture: e.architecture,
                        os: "linux",
                        ...(e.variant === undefined ? {} : { variant: e.variant }),
                    },
                })),
            }),
        ),
        MEDIA_TYPE_OCI_INDEX,
    );
}

/** Puts an image's blobs and then its manifest (named `tagOrDigest`) the way the copy code does. */
export async function putImage(dest: ImageDestination, image: TestImage, tagOrDigest?: string): Promise<string> {
    for (const b of [image.config, ...image.layers]) {
        await dest.putBlob(Readable.from([b.bytes]), { digest: b.digest, size: b.bytes.length });
    }
    return dest.putManifest(image.manifest.bytes, image.manifest.mediaType, tagOrDigest);
}

export async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
        chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
}

/** Runs skopeo (without a signature policy: the tests only move local files) and returns stdout. */
export function skopeo(...args: string[]): Buffer {
    return execFileSync("skopeo", ["--insecure-policy", ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

export function skopeoAvailable(): boolean {
    try {
        execFileSync("skopeo", ["--version"], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `airgap-oci-${prefix}-`));
}
