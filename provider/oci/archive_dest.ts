/**
 * Writing images to an `oci-archive:` tar file. Everything is put into a staging layout directory
 * beside the archive (so blobs are verified and disk space checked as for a layout); `commit`
 * streams the staging layout into a temporary tar beside the archive, flushes it and renames it
 * over the archive. An existing archive is replaced, not merged. `close` removes the staging area.
 *
 * The tar headers (ustar, with a pax header for names longer than ustar allows) are written by
 * `tar-stream`.
 */

import { createReadStream, promises as fsp } from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type * as tar from "tar-stream";
import { tarStream } from "./tar";
import { AirgapError } from "../errors";
import { writeStreamAtomic } from "../store/atomic";
import { OCI_BLOBS_DIR, OCI_INDEX_FILE, OCI_LAYOUT_FILE } from "./layout";
import { type OciLayoutDestinationOptions, OciLayoutImageDestination } from "./layout_dest";
import type { ImageDestination, OciArchiveLocation } from "./types";

/** One entry of a layout archive: a path inside the layout, "/"-separated. */
export interface LayoutArchiveEntry {
    readonly name: string;
    readonly type: "file" | "directory";
    readonly size: number;
}

/** Entries carry no time, owner or group of the staging area, so the same layout gives the same archive. */
const EPOCH = new Date(0);

/** The entries of the layout at `dir`, in archive order: `oci-layout`, `index.json`, then the blob tree sorted. */
export async function layoutEntries(dir: string): Promise<LayoutArchiveEntry[]> {
    const entries: LayoutArchiveEntry[] = [];
    for (const name of [OCI_LAYOUT_FILE, OCI_INDEX_FILE]) {
        entries.push({ name, type: "file", size: (await fsp.stat(path.join(dir, name))).size });
    }
    entries.push({ name: OCI_BLOBS_DIR, type: "directory", size: 0 });
    const algorithms = (await fsp.readdir(path.join(dir, OCI_BLOBS_DIR))).filter((n) => !n.startsWith(".")).sort();
    for (const algorithm of algorithms) {
        entries.push({ name: `${OCI_BLOBS_DIR}/${algorithm}`, type: "directory", size: 0 });
        const blobs = (await fsp.readdir(path.join(dir, OCI_BLOBS_DIR, algorithm))).filter((n) => !n.startsWith("."));
        for (const blob of blobs.sort()) {
            const name = `${OCI_BLOBS_DIR}/${algorithm}/${blob}`;
            entries.push({ name, type: "file", size: (await fsp.stat(path.join(dir, name))).size });
        }
    }
    return entries;
}

/**
 * The tar archive of `entries` of the layout at `dir`, as a stream: each file is read from disk
 * while the archive is consumed. The stream fails (ERR_IO) when a file's size is not the one in
 * its entry.
 */
export function packLayout(dir: string, entries: readonly LayoutArchiveEntry[]): tar.Pack {
    const pack = tarStream().pack();
    const fill = async (): Promise<void> => {
        for (const entry of entries) {
            if (entry.type === "directory") {
                // The trailing "/" marks a directory for old readers too (tar-stream does not add it).
                pack.entry({ name: `${entry.name}/`, type: "directory", mode: 0o755, mtime: EPOCH });
                continue;
            }
            const sink = pack.entry({ name: entry.name, type: "file", size: entry.size, mode: 0o644, mtime: EPOCH });
            await pipeline(
                createReadStream(path.join(dir, entry.name)),
                async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
                    let read = 0;
                    for await (const chunk of chunks) {
                        read += chunk.length;
                        if (read > entry.size) {
                            break;
                        }
                        yield chunk;
                    }
                    if (read !== entry.size) {
                        throw new AirgapError("ERR_IO", `${entry.name} changed size while being archived`);
                    }
                },
                sink,
            );
        }
        pack.finalize();
    };
    fill().catch((err: Error) => pack.destroy(err));
    return pack;
}

export class OciArchiveImageDestination implements ImageDestination {
    private constructor(
        public readonly location: OciArchiveLocation,
        private readonly staging: string,
        private readonly layout: OciLayoutImageDestination,
        private readonly freeSpace: ((dir: string) => Promise<number>) | undefined,
    ) {}

    static async open(
        location: OciArchiveLocation,
        options: OciLayoutDestinationOptions = {},
    ): Promise<OciArchiveImageDestination> {
        const parent = path.dirname(path.resolve(location.path));
        let staging: string;
        try {
            await fsp.mkdir(parent, { recursive: true });
            staging = await fsp.mkdtemp(path.join(parent, `.tmp-${path.basename(location.path)}-`));
        } catch (cause) {
            throw new AirgapError("ERR_IO", `creating a staging directory for OCI archive ${location.path}`, { cause });
        }
        try {
            const layout = await OciLayoutImageDestination.open(
                {
                    transport: "oci",
                    path: staging,
                    ...(location.reference === undefined ? {} : { reference: location.reference }),
                },
                options,
            );
            return new OciArchiveImageDestination(location, staging, layout, options.freeSpace);
        } catch (cause) {
            await fsp.rm(staging, { recursive: true, force: true });
            throw cause;
        }
    }

    hasBlob(digest: string): Promise<boolean> {
        return this.layout.hasBlob(digest);
    }

    putBlob(stream: Readable, expected: { readonly digest: string; readonly size?: number }): Promise<void> {
        return this.layout.putBlob(stream, expected);
    }

    putManifest(bytes: Buffer, mediaType: string, tagOrDigest?: string): Promise<string> {
        return this.layout.putManifest(bytes, mediaType, tagOrDigest);
    }

    listTags(): Promise<string[]> {
        return this.layout.listTags();
    }

    async commit(): Promise<void> {
        await this.layout.commit();
        const file = this.location.path;
        const entries = await layoutEntries(this.staging);
        const total = entries.reduce((n, e) => n + 1024 + e.size, 1024);
        const free = await (this.freeSpace ?? defaultFreeSpace)(path.dirname(path.resolve(file)));
        if (total > free) {
            throw new AirgapError(
                "ERR_IO",
                `not enough disk space for OCI archive ${file} (about ${total} bytes): only ${free} bytes left`,
            );
        }
        try {
            await writeStreamAtomic(path.resolve(file), packLayout(this.staging, entries));
        } catch (cause) {
            throw new AirgapError("ERR_IO", `writing OCI archive ${file}`, { cause });
        }
    }

    async close(): Promise<void> {
        await this.layout.close();
        await fsp.rm(this.staging, { recursive: true, force: true });
    }
}

async function defaultFreeSpace(dir: string): Promise<number> {
    const st = await fsp.statfs(dir);
    return Number(st.bavail) * Number(st.bsize);
}
