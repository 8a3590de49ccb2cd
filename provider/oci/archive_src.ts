/**
 * Reading images from an `oci-archive:` tar file. The archive is extracted, streaming, into a
 * private temporary layout (blobs verified against their names while they are written), which
 * the layout source then reads; `close` removes it.
 */

import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AirgapError } from "../errors";
import { DigestVerifier, isDigest } from "./digest";
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE } from "./layout";
import { OciLayoutImageSource } from "./layout_src";
import { readTar } from "./tar";
import type { BlobReader, ImageSource, ManifestBlob, OciArchiveLocation } from "./types";

export interface OciArchiveSourceOptions {
    /** Where the temporary extracted layout goes. Defaults to `os.tmpdir()`. */
    readonly tempDir?: string;
}

/** Extracts the layout files of the archive at `file` into `dir`, verifying blobs. */
export async function extractLayoutArchive(file: string, dir: string): Promise<void> {
    const where = `OCI archive ${file}`;
    let stream: Readable;
    try {
        await fsp.access(file);
        stream = createReadStream(file);
    } catch (cause) {
        throw new AirgapError(
            (cause as NodeJS.ErrnoException).code === "ENOENT" ? "ERR_NOT_FOUND" : "ERR_IO",
            `opening ${where}`,
            { cause },
        );
    }
    try {
        await readTar(stream, where, async (entry, body) => {
            const parts = entry.name.split("/");
            let target: string | undefined;
            let verifier: DigestVerifier | undefined;
            if (entry.type === "file" && (entry.name === OCI_LAYOUT_FILE || entry.name === OCI_INDEX_FILE)) {
                target = path.join(dir, entry.name);
            } else if (entry.type === "file" && parts.length === 3 && parts[0] === "blobs") {
                const digest = `${parts[1]}:${parts[2]}`;
                if (!isDigest(digest)) {
                    throw new AirgapError(
                        "ERR_PARSE",
                        `${where}: "${entry.name}" is not a blob name (blobs/<algorithm>/<hex>)`,
                    );
                }
                await fsp.mkdir(path.join(dir, "blobs", parts[1]!), { recursive: true });
                target = path.join(dir, "blobs", parts[1]!, parts[2]!);
                verifier = new DigestVerifier({ digest, size: entry.size });
            }
            if (target === undefined) {
                // Directories and files a layout does not define are not needed.
                for await (const _ of body) {
                    // discard
                }
                return;
            }
            const out = createWriteStream(target, { flags: "wx" });
            if (verifier === undefined) {
                await pipeline(Readable.from(body), out);
            } else {
                await pipeline(Readable.from(body), verifier, out);
            }
        });
    } catch (cause) {
        stream.destroy();
        if ((cause as { name?: unknown }).name === "AirgapError") {
            throw cause;
        }
        if ((cause as NodeJS.ErrnoException).code === "EEXIST") {
            throw new AirgapError("ERR_PARSE", `${where} holds the same layout file twice`, { cause });
        }
        throw new AirgapError("ERR_IO", `extracting ${where}`, { cause });
    }
}

export class OciArchiveImageSource implements ImageSource {
    private constructor(
        public readonly location: OciArchiveLocation,
        private readonly dir: string,
        private readonly layout: OciLayoutImageSource,
    ) {}

    static async open(
        location: OciArchiveLocation,
        options: OciArchiveSourceOptions = {},
    ): Promise<OciArchiveImageSource> {
        const dir = await fsp.mkdtemp(path.join(options.tempDir ?? os.tmpdir(), "airgap-oci-archive-"));
        try {
            await extractLayoutArchive(location.path, dir);
            let layout: OciLayoutImageSource;
            try {
                layout = await OciLayoutImageSource.open({
                    transport: "oci",
                    path: dir,
                    ...(location.reference === undefined ? {} : { reference: location.reference }),
                });
            } catch (cause) {
                throw new AirgapError(
                    "ERR_PARSE",
                    `OCI archive ${location.path} does not hold a valid OCI image layout ` +
                        "(oci-layout and index.json at its top)",
                    { cause },
                );
            }
            return new OciArchiveImageSource(location, dir, layout);
        } catch (cause) {
            await fsp.rm(dir, { recursive: true, force: true });
            throw cause;
        }
    }

    getManifest(digest?: string): Promise<ManifestBlob> {
        return this.layout.getManifest(digest).catch((cause) => {
            throw this.rename(cause);
        });
    }

    getBlob(digest: string): Promise<BlobReader> {
        return this.layout.getBlob(digest).catch((cause) => {
            throw this.rename(cause);
        });
    }

    hasBlob(digest: string): Promise<boolean> {
        return this.layout.hasBlob(digest);
    }

    listTags(): Promise<string[]> {
        return this.layout.listTags();
    }

    async close(): Promise<void> {
        await this.layout.close();
        await fsp.rm(this.dir, { recursive: true, force: true });
    }

    /** Errors of the extracted layout name the archive, not the temporary directory. */
    private rename(cause: unknown): unknown {
        const err = cause as { code?: unknown; message?: unknown; name?: unknown };
        if (err.name === "AirgapError" && typeof err.message === "string" && typeof err.code === "string") {
            const message = err.message
                .split(`oci:${this.dir}`)
                .join(`oci-archive:${this.location.path}`)
                .split(`OCI layout ${this.dir}`)
                .join(`OCI archive ${this.location.path}`)
                .split(this.dir)
                .join(this.location.path);
            return new AirgapError(err.code as AirgapError["code"], message, { cause });
        }
        return cause;
    }
}
