/**
 * Writing images to an OCI image layout directory.
 *
 * Blobs are streamed to a temporary file beside their final name, verified while streaming,
 * flushed to disk and renamed into place, so a blob present under its digest is always complete
 * and verified. `index.json` is rewritten atomically (temp file + rename) for every named
 * manifest, after the manifest's blobs and children are in place. Temporary files left by a
 * crash are dot-files named `.<name>.tmp-*`; they are never read.
 */

import { promises as fsp } from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { AirgapError, invalidArgument, isAirgapError } from "../errors";
import { readFileCapped } from "../http/body";
import { writeStreamAtomic } from "../store/atomic";
import { DigestVerifier, digestOf, isDigest, parseDigest } from "./digest";
import {
    ANNOTATION_REF_NAME,
    blobPath,
    checkLayoutFile,
    emptyLayoutIndex,
    findByRefName,
    isValidRefName,
    MAX_LAYOUT_FILE_SIZE,
    OCI_INDEX_FILE,
    OCI_LAYOUT_FILE,
    OCI_LAYOUT_VERSION,
    readLayout,
    refNames,
    serializeLayoutIndex,
    withIndexEntry,
    writeLayoutFile,
} from "./layout";
import { type Descriptor, parseManifest, references } from "./manifest";
import type { ImageDestination, OciLayoutLocation } from "./types";

export interface OciLayoutDestinationOptions {
    /**
     * Bytes free for a new file in `dir`. Defaults to `fs.statfs` (blocks available to this user
     * times block size). Tests inject a small value to exercise the disk-full path.
     */
    readonly freeSpace?: (dir: string) => Promise<number>;
}

async function statfsFreeSpace(dir: string): Promise<number> {
    const st = await fsp.statfs(dir);
    return Number(st.bavail) * Number(st.bsize);
}

export class OciLayoutImageDestination implements ImageDestination {
    private indexQueue: Promise<unknown> = Promise.resolve();

    private constructor(
        public readonly location: OciLayoutLocation,
        private readonly freeSpace: (dir: string) => Promise<number>,
    ) {}

    static async open(
        location: OciLayoutLocation,
        options: OciLayoutDestinationOptions = {},
    ): Promise<OciLayoutImageDestination> {
        const dir = location.path;
        if (location.reference !== undefined && !isValidRefName(location.reference)) {
            throw invalidArgument("location.reference", `"${location.reference}" is not a valid reference name`);
        }
        try {
            await fsp.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
        } catch (cause) {
            throw new AirgapError("ERR_IO", `creating OCI layout ${dir}`, { cause });
        }
        const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
        let existing: string | undefined;
        try {
            existing = (await readFileCapped(layoutFile, MAX_LAYOUT_FILE_SIZE, layoutFile)).toString("utf8");
        } catch (cause) {
            if (isAirgapError(cause)) {
                throw cause;
            }
            if ((cause as NodeJS.ErrnoException).code !== "ENOENT") {
                throw new AirgapError("ERR_IO", `reading ${layoutFile}`, { cause });
            }
        }
        if (existing === undefined) {
            await writeLayoutFile(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
        } else {
            checkLayoutFile(existing, layoutFile);
        }
        const indexFile = path.join(dir, OCI_INDEX_FILE);
        try {
            await fsp.access(indexFile);
        } catch {
            await writeLayoutFile(indexFile, serializeLayoutIndex(emptyLayoutIndex()));
        }
        // Fails early on an unreadable index rather than at the first manifest.
        await readLayout(dir);
        return new OciLayoutImageDestination(location, options.freeSpace ?? statfsFreeSpace);
    }

    async hasBlob(digest: string): Promise<boolean> {
        const file = blobPath(this.location.path, digest);
        try {
            return (await fsp.stat(file)).isFile();
        } catch (cause) {
            if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
                return false;
            }
            throw new AirgapError("ERR_IO", `checking blob ${digest} in OCI layout ${this.location.path}`, { cause });
        }
    }

    async putBlob(stream: Readable, expected: { readonly digest: string; readonly size?: number }): Promise<void> {
        const dir = this.location.path;
        let file: string;
        let verifier: DigestVerifier;
        try {
            file = blobPath(dir, expected.digest);
            verifier = new DigestVerifier(expected);
        } catch (err) {
            stream.destroy();
            throw err;
        }
        if (await this.hasBlob(expected.digest)) {
            stream.destroy();
            return;
        }
        const blobDir = path.dirname(file);
        try {
            await fsp.mkdir(blobDir, { recursive: true });
        } catch (cause) {
            stream.destroy();
            throw new AirgapError("ERR_IO", `creating ${blobDir}`, { cause });
        }
        if (expected.size !== undefined) {
            let free: number;
            try {
                free = await this.freeSpace(blobDir);
            } catch (cause) {
                stream.destroy();
                throw new AirgapError("ERR_IO", `checking free space in ${blobDir}`, { cause });
            }
            if (expected.size > free) {
                stream.destroy();
                throw new AirgapError(
                    "ERR_IO",
                    `not enough disk space for blob ${expected.digest} (${expected.size} bytes) in OCI layout ${dir}: ` +
                        `only ${free} bytes left`,
                );
            }
        }
        try {
            await writeStreamAtomic(file, stream, [verifier]);
        } catch (cause) {
            // Verification failures and errors of the source stream (network, ...) keep their code.
            if (isAirgapError(cause)) {
                throw cause;
            }
            if ((cause as NodeJS.ErrnoException).code === "ENOSPC") {
                throw new AirgapError(
                    "ERR_IO",
                    `disk full while writing blob ${expected.digest} to OCI layout ${dir}`,
                    { cause },
                );
            }
            throw new AirgapError("ERR_IO", `writing blob ${expected.digest} to OCI layout ${dir}`, { cause });
        }
    }

    async putManifest(bytes: Buffer, mediaType: string, tagOrDigest?: string): Promise<string> {
        const dir = this.location.path;
        const parsed = parseManifest(bytes, mediaType);
        let digest = parsed.digest;
        let tag: string | undefined;
        if (tagOrDigest !== undefined && isDigest(tagOrDigest)) {
            digest = digestOf(bytes, parseDigest(tagOrDigest).algorithm);
            if (digest !== tagOrDigest) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `manifest for ${tagOrDigest}: the bytes given have digest ${digest}`,
                );
            }
        } else {
            tag = tagOrDigest ?? this.location.reference;
            if (tag !== undefined && !isValidRefName(tag)) {
                throw invalidArgument("tagOrDigest", `"${tag}" is not a valid reference name`);
            }
        }
        const { blobs, children } = references(parsed);
        const checked = new Set<string>();
        for (const d of [...blobs, ...children]) {
            if (checked.has(d.digest)) {
                continue;
            }
            checked.add(d.digest);
            if (!(await this.hasBlob(d.digest))) {
                const what = children.includes(d) ? "child manifest" : "blob";
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `manifest ${digest} references ${what} ${d.digest}, which is not in OCI layout ${dir}; put it first`,
                );
            }
        }
        const file = blobPath(dir, digest);
        if (!(await this.hasBlob(digest))) {
            await fsp.mkdir(path.dirname(file), { recursive: true });
            await writeLayoutFile(file, bytes);
        }
        if (tagOrDigest !== undefined && tag === undefined) {
            return digest;
        }
        const desc: Descriptor =
            tag === undefined
                ? { mediaType: parsed.mediaType, digest, size: bytes.length }
                : {
                      mediaType: parsed.mediaType,
                      digest,
                      size: bytes.length,
                      annotations: { [ANNOTATION_REF_NAME]: tag },
                  };
        await this.updateIndex(desc);
        return digest;
    }

    /** Adds `desc` to `index.json`; updates from this object are applied one at a time. */
    private updateIndex(desc: Descriptor): Promise<void> {
        const dir = this.location.path;
        const run = async (): Promise<void> => {
            const index = await readLayout(dir);
            await writeLayoutFile(path.join(dir, OCI_INDEX_FILE), serializeLayoutIndex(withIndexEntry(index, desc)));
        };
        const next = this.indexQueue.then(run, run);
        this.indexQueue = next.catch(() => undefined);
        return next;
    }

    async listTags(): Promise<string[]> {
        return refNames(await readLayout(this.location.path));
    }

    async hasManifest(digest: string): Promise<boolean> {
        return this.hasBlob(digest);
    }

    async tagDigest(tag: string): Promise<string | undefined> {
        await this.indexQueue;
        const found = findByRefName(await readLayout(this.location.path), tag);
        return found[found.length - 1]?.digest;
    }

    async commit(): Promise<void> {
        await this.indexQueue;
    }

    async close(): Promise<void> {
        await this.indexQueue;
    }
}
