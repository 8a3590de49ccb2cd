/**
 * Reading images from an OCI image layout directory.
 */

import { createReadStream, promises as fsp } from "node:fs";
import { AirgapError, isAirgapError } from "../errors";
import { readFileCapped } from "../http/body";
import { digestOf, parseDigest } from "./digest";
import { blobPath, findByRefName, type LayoutIndex, readLayout, refNames } from "./layout";
import { type Descriptor, parseManifest } from "./manifest";
import type { BlobReader, ImageSource, ManifestBlob, OciLayoutLocation } from "./types";

/** Manifests larger than this are refused rather than read into memory (as other clients do). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export class OciLayoutImageSource implements ImageSource {
    private constructor(
        public readonly location: OciLayoutLocation,
        private readonly index: LayoutIndex,
    ) {}

    static async open(location: OciLayoutLocation): Promise<OciLayoutImageSource> {
        return new OciLayoutImageSource(location, await readLayout(location.path));
    }

    /** The `index.json` entry the location names. */
    resolve(): Descriptor {
        const dir = this.location.path;
        const ref = this.location.reference;
        if (ref !== undefined) {
            const found = findByRefName(this.index, ref);
            if (found.length === 0) {
                const names = refNames(this.index);
                throw new AirgapError(
                    "ERR_NOT_FOUND",
                    `no image named "${ref}" in OCI layout ${dir} ` +
                        `(it holds ${names.length === 0 ? "no named images" : names.map((n) => `"${n}"`).join(", ")})`,
                );
            }
            return found[found.length - 1]!;
        }
        if (this.index.manifests.length !== 1) {
            throw new AirgapError(
                "ERR_NOT_FOUND",
                `OCI layout ${dir} holds ${this.index.manifests.length} images; name one as "oci:${dir}:<reference>"` +
                    ` (names: ${refNames(this.index).join(", ") || "none"})`,
            );
        }
        return this.index.manifests[0]!;
    }

    async getManifest(digest?: string): Promise<ManifestBlob> {
        const desc = digest === undefined ? this.resolve() : undefined;
        const want = desc?.digest ?? digest!;
        parseDigest(want);
        const file = blobPath(this.location.path, want);
        let bytes: Buffer;
        try {
            bytes = await readFileCapped(file, MAX_MANIFEST_SIZE, `manifest ${want} in ${this.location.path}`);
        } catch (cause) {
            throw notFoundOrIo(cause, `manifest ${want}`, this.location.path);
        }
        const actual = digestOf(bytes, parseDigest(want).algorithm);
        if (actual !== want) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `manifest ${want} in ${this.location.path}: stored bytes have digest ${actual}`,
            );
        }
        const parsed = parseManifest(bytes, desc?.mediaType);
        return { bytes, mediaType: parsed.mediaType, digest: want };
    }

    async getBlob(digest: string): Promise<BlobReader> {
        const file = blobPath(this.location.path, digest);
        let size: number;
        try {
            size = (await fsp.stat(file)).size;
        } catch (cause) {
            throw notFoundOrIo(cause, `blob ${digest}`, this.location.path);
        }
        return { stream: createReadStream(file), size };
    }

    async hasBlob(digest: string): Promise<boolean> {
        try {
            return (await fsp.stat(blobPath(this.location.path, digest))).isFile();
        } catch (cause) {
            if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
                return false;
            }
            throw notFoundOrIo(cause, `blob ${digest}`, this.location.path);
        }
    }

    async listTags(): Promise<string[]> {
        return refNames(this.index);
    }

    async close(): Promise<void> {}
}

function notFoundOrIo(cause: unknown, what: string, dir: string): AirgapError {
    if (typeof cause === "object" && cause !== null && (cause as { code?: unknown }).code === "ENOENT") {
        return new AirgapError("ERR_NOT_FOUND", `${what} is not in OCI layout ${dir}`, { cause });
    }
    if (isAirgapError(cause)) {
        return cause;
    }
    return new AirgapError("ERR_IO", `reading ${what} from OCI layout ${dir}`, { cause });
}
