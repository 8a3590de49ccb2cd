/**
 * Reading images from an `oci-archive:` tar file. The archive is extracted, streaming, into a
 * private temporary layout (blobs verified against their names while they are written), which
 * the layout source then reads; `close` removes it.
 *
 * The tar format (ustar, pax and GNU headers, base-256 sizes) is read by `tar-stream`; this file
 * decides what an image archive may hold and turns its failures into errors naming the archive.
 */

import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type * as tar from "tar-stream";
import { tarStream } from "./tar";
import { AirgapError, isAirgapError } from "../errors";
import { DigestVerifier, isDigest } from "./digest";
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE } from "./layout";
import { OciLayoutImageSource } from "./layout_src";
import type { BlobReader, ImageSource, ManifestBlob, OciArchiveLocation } from "./types";

export interface OciArchiveSourceOptions {
    /** Where the temporary extracted layout goes. Defaults to `os.tmpdir()`. */
    readonly tempDir?: string;
}

const BLOCK = 512;

/** The tar type flag of each entry type, for messages that refuse one. */
const TYPE_FLAGS: Readonly<Record<string, string>> = {
    link: "1",
    symlink: "2",
    "character-device": "3",
    "block-device": "4",
    fifo: "6",
};

function cleanName(name: string): string {
    let n = name;
    while (n.startsWith("./")) {
        n = n.slice(2);
    }
    return n.replace(/\/+$/, "");
}

function toBuffer(chunk: Uint8Array | string): Buffer {
    if (typeof chunk === "string") {
        return Buffer.from(chunk);
    }
    return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Reads an entry to its end, discarding it. */
async function drain(entry: AsyncIterable<unknown>): Promise<void> {
    for await (const _ of entry) {
        // discard
    }
}

/** Where one extracted entry goes: its path in `dir`, and the digest its bytes must have (blobs). */
function targetOf(
    name: string,
    size: number,
    dir: string,
    where: string,
): { file: string; verifier?: DigestVerifier } | undefined {
    if (name === OCI_LAYOUT_FILE || name === OCI_INDEX_FILE) {
        return { file: path.join(dir, name) };
    }
    const parts = name.split("/");
    if (parts.length !== 3 || parts[0] !== "blobs") {
        // Files a layout does not define are not needed.
        return undefined;
    }
    const digest = `${parts[1]}:${parts[2]}`;
    if (!isDigest(digest)) {
        throw new AirgapError("ERR_PARSE", `${where}: "${name}" is not a blob name (blobs/<algorithm>/<hex>)`);
    }
    return { file: path.join(dir, "blobs", parts[1]!, parts[2]!), verifier: new DigestVerifier({ digest, size }) };
}

/**
 * Extracts the layout files (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) of the tar read
 * from `source` into `dir`, streaming each entry to disk and verifying blobs against their names.
 * Directories and other files are skipped; links and devices are refused. `where` names the
 * archive in errors: ERR_PARSE "... is not a tar archive" when it does not start with a tar
 * header, "... is truncated" when the data ends before the end-of-archive marker, ERR_VERIFICATION
 * for a blob that does not match its name, ERR_IO for a failure to write `dir`.
 */
export async function extractLayoutTar(
    source: AsyncIterable<Uint8Array | string>,
    where: string,
    dir: string,
): Promise<void> {
    let bytes = 0;
    let firstBlock = Buffer.alloc(0);
    async function* counted(): AsyncGenerator<Buffer> {
        for await (const chunk of source) {
            const buf = toBuffer(chunk);
            if (firstBlock.length < BLOCK) {
                firstBlock = Buffer.concat([firstBlock, buf.subarray(0, BLOCK - firstBlock.length)]);
            }
            bytes += buf.length;
            yield buf;
        }
    }

    // Old v7 headers (no "ustar" magic, valid checksum) are accepted, as GNU tar does. The option
    // is missing from the package's type declarations, hence the widened type.
    const options: NonNullable<Parameters<typeof tar.extract>[0]> & { allowUnknownFormat: boolean } = {
        allowUnknownFormat: true,
    };
    const extract = tarStream().extract(options);
    let tarError: Error | undefined;
    extract.on("error", (err: Error) => {
        tarError ??= err;
    });
    const feeding = pipeline(Readable.from(counted()), extract);
    // Observed below; this keeps a failure after an early exit from being unhandled.
    feeding.catch(() => undefined);

    let entries = 0;
    /** The entry being read, and the offset where its data (with padding) ends. */
    let current: { name: string; end: number } | undefined;
    const truncated = (): AirgapError => {
        const inside = current !== undefined && bytes < current.end ? ` (it ends inside "${current.name}")` : "";
        return new AirgapError("ERR_PARSE", `${where} is truncated${inside}`);
    };
    const translate = (cause: unknown): unknown => {
        if (isAirgapError(cause)) {
            return cause;
        }
        // A failure of the tar reader (or of the source, which it is handed) explains any other
        // error seen after it, such as the entry stream being cut off.
        const err = tarError ?? cause;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EEXIST") {
            return new AirgapError("ERR_PARSE", `${where} holds the same layout file twice`, { cause: err });
        }
        if (typeof code === "string") {
            return new AirgapError("ERR_IO", `extracting ${where}`, { cause: err });
        }
        const message = (err as { message?: unknown }).message;
        if (message === "Unexpected end of data") {
            return entries === 0 && bytes < BLOCK
                ? new AirgapError("ERR_PARSE", `${where} is not a tar archive`, { cause: err })
                : truncated();
        }
        if (typeof message === "string" && message.startsWith("Invalid tar header")) {
            return new AirgapError(
                "ERR_PARSE",
                entries === 0 ? `${where} is not a tar archive` : `${where}: corrupt tar header (bad checksum)`,
                { cause: err },
            );
        }
        return new AirgapError("ERR_PARSE", `${where}: corrupt tar data (${String(message)})`, { cause: err });
    };

    try {
        for await (const entry of extract) {
            entries++;
            const header = entry.header;
            const name = cleanName(header.name);
            // tar-stream reads no data for a directory, whatever size its header gives.
            const size = header.type === "directory" ? 0 : header.size;
            current = { name, end: entry.offset + BLOCK + Math.ceil(size / BLOCK) * BLOCK };
            if (header.type === "directory") {
                await drain(entry);
                continue;
            }
            if (header.type !== "file" && header.type !== "contiguous-file") {
                // tar-stream gives no type name (null) for type flags it does not know.
                const flag = TYPE_FLAGS[header.type] ?? (header.type as string | null) ?? "unknown";
                throw new AirgapError(
                    "ERR_PARSE",
                    `${where}: entry "${name}" has tar type "${flag}"; an image archive holds only files and directories`,
                );
            }
            const target = targetOf(name, header.size, dir, where);
            if (target === undefined) {
                await drain(entry);
                continue;
            }
            await fsp.mkdir(path.dirname(target.file), { recursive: true });
            const out = createWriteStream(target.file, { flags: "wx" });
            if (target.verifier === undefined) {
                await pipeline(Readable.from(entry), out);
            } else {
                await pipeline(Readable.from(entry), target.verifier, out);
            }
        }
        await feeding;
    } catch (cause) {
        extract.destroy();
        throw translate(cause);
    }
    if (entries === 0) {
        if (bytes === 0) {
            throw new AirgapError("ERR_PARSE", `${where} is not a tar archive: it is empty`);
        }
        throw new AirgapError(
            "ERR_PARSE",
            firstBlock.every((b) => b === 0)
                ? `${where} is not a tar archive: it starts with a zero block`
                : `${where} is not a tar archive: it holds no entries`,
        );
    }
    // The end-of-archive marker is two zero blocks; a missing second one is tolerated.
    if (current !== undefined && bytes < current.end + BLOCK) {
        throw new AirgapError("ERR_PARSE", `${where} is truncated`);
    }
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
        await extractLayoutTar(stream, where, dir);
    } finally {
        stream.destroy();
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
        const err = cause;
        if (isAirgapError(err)) {
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
