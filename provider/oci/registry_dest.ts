/**
 * Writing images to a registry.
 *
 * A blob already in the repository (HEAD) is not sent again. One that a sibling repository of
 * the same registry is known to hold is mounted (`POST .../blobs/uploads/?mount=&from=`). Others
 * are uploaded, and the registry only makes an upload visible under its digest on the final
 * `PUT ...?digest=`, which is sent only after the bytes verified here:
 *
 * - blobs of known size up to `chunkThreshold` are read into memory and verified first, then sent
 *   in one `PUT` (a mismatching blob never reaches the registry; the PUT can be retried);
 * - larger blobs, and blobs of unknown size, go in `PATCH` chunks of `chunkSize` bytes with a
 *   `Content-Range`; a chunk that fails is resumed from the offset the registry reports. A blob
 *   that fails verification has its upload cancelled (DELETE) and is never committed.
 *
 * Manifests are pushed as the exact bytes given, with their own media type.
 *
 * One file for one transport side, as containers/image's docker_image_dest.go: the upload
 * protocol's steps (HEAD, mount, monolithic or chunked upload, cancel, manifest PUT) share the
 * session they run in.
 */

import type { Readable } from "node:stream";
import { retryDelay } from "../http/retry";
import { AirgapError, invalidArgument, isAirgapError } from "../errors";
import { DigestVerifier, digestOf, isDigest, parseDigest } from "./digest";
import { parseManifest } from "./manifest";
import { fullName, withTag } from "./reference";
import {
    describeErrorBody,
    errorCodes,
    header,
    isRetriableStatus,
    type RegistryClient,
    type RegistryResponse,
    readErrorText,
    repositoryScope,
    uploadedBytes,
} from "./registry_client";
import { type ManifestHead, deleteTag, headManifest, type TagDeletion } from "./registry_manifests";
import { fetchManifest, headBlob, listTags } from "./registry_src";
import type { BlobLocationCache } from "./registry_transport";
import type { DockerLocation, ImageDestination, ManifestBlob } from "./types";

export const DEFAULT_CHUNK_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

export interface RegistryDestinationOptions {
    /** Blobs larger than this (or of unknown size) are uploaded in chunks. Defaults to 16 MiB. */
    readonly chunkThreshold?: number;
    /** Size of one `PATCH` of a chunked upload. Defaults to 16 MiB. */
    readonly chunkSize?: number;
    /** Consulted for cross-repository mounts, and told about what the destination holds. */
    readonly blobLocations?: BlobLocationCache;
    /** Attempts per chunk of a chunked upload. Defaults to 4. */
    readonly chunkAttempts?: number;
}

function positiveInteger(value: number | undefined, fallback: number, argument: string): number {
    if (value === undefined) {
        return fallback;
    }
    if (!Number.isSafeInteger(value) || value < 1) {
        throw invalidArgument(argument, `must be a positive integer, got ${value}`);
    }
    return value;
}

export class RegistryImageDestination implements ImageDestination {
    private readonly repository: string;
    private readonly chunkThreshold: number;
    private readonly chunkSize: number;
    private readonly chunkAttempts: number;

    constructor(
        public readonly location: DockerLocation,
        private readonly client: RegistryClient,
        private readonly options: RegistryDestinationOptions = {},
    ) {
        this.repository = location.reference.path;
        this.chunkThreshold = options.chunkThreshold ?? DEFAULT_CHUNK_THRESHOLD;
        if (!Number.isSafeInteger(this.chunkThreshold) || this.chunkThreshold < 0) {
            throw invalidArgument("chunkThreshold", `must be a non-negative integer, got ${options.chunkThreshold}`);
        }
        this.chunkSize = positiveInteger(options.chunkSize, DEFAULT_CHUNK_SIZE, "chunkSize");
        this.chunkAttempts = positiveInteger(options.chunkAttempts, 4, "chunkAttempts");
    }

    private get name(): string {
        return fullName(this.location.reference);
    }

    async hasBlob(digest: string): Promise<boolean> {
        return headBlob(this.client, this.repository, digest, "pull,push", this.options.blobLocations);
    }

    async putBlob(stream: Readable, expected: { readonly digest: string; readonly size?: number }): Promise<void> {
        let verifier: DigestVerifier;
        try {
            verifier = new DigestVerifier(expected);
        } catch (err) {
            stream.destroy();
            throw err;
        }
        const what = `blob ${expected.digest} to ${this.name}`;
        let session: string | undefined;
        try {
            if (await this.hasBlob(expected.digest)) {
                stream.destroy();
                return;
            }
            const mount = await this.tryMount(expected.digest);
            if (mount === true) {
                stream.destroy();
                this.options.blobLocations?.record(this.client.domain, this.repository, expected.digest);
                return;
            }
            session = mount;
            // Errors reach the reader through the iteration below; this listener only keeps an
            // error raised before the iteration starts from being reported as unhandled.
            verifier.on("error", () => undefined);
            stream.on("error", (e) => verifier.destroy(e));
            if (expected.size !== undefined && expected.size <= this.chunkThreshold) {
                // Read and verify before anything is sent, so the upload can be retried as a whole.
                stream.pipe(verifier);
                const bytes = await readAll(verifier);
                session ??= await this.startUpload(what);
                await this.finishUpload(session, expected.digest, bytes, what);
            } else {
                session ??= await this.startUpload(what);
                stream.pipe(verifier);
                await this.chunkedUpload(session, verifier, expected.digest, what);
            }
            session = undefined;
            this.options.blobLocations?.record(this.client.domain, this.repository, expected.digest);
        } catch (err) {
            stream.destroy();
            verifier.destroy();
            if (session !== undefined) {
                await this.cancelUpload(session, what);
            }
            if (isAirgapError(err)) {
                throw err;
            }
            throw new AirgapError("ERR_NETWORK", `pushing ${what}: ${(err as Error).message}`, { cause: err });
        }
    }

    /**
     * Tries to mount `digest` from a sibling repository known to hold it: true when mounted, the
     * upload location the registry opened instead (202), or undefined.
     */
    private async tryMount(digest: string): Promise<true | string | undefined> {
        const cache = this.options.blobLocations;
        if (cache === undefined) {
            return undefined;
        }
        for (const from of cache.candidates(this.client.domain, digest, this.repository).slice(0, 3)) {
            const res = await this.client.send({
                method: "POST",
                url: `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
                repository: this.repository,
                actions: "pull,push",
                extraScopes: [repositoryScope(from, "pull")],
                what: `mounting blob ${digest} from ${this.client.domain}/${from} into ${this.name}`,
            });
            await res.body.dump();
            if (res.status === 201) {
                return true;
            }
            const location = header(res, "location");
            if (res.status === 202 && location !== undefined) {
                return location;
            }
        }
        return undefined;
    }

    private async startUpload(what: string): Promise<string> {
        const res = await this.client.send({
            method: "POST",
            url: `/v2/${this.repository}/blobs/uploads/`,
            repository: this.repository,
            actions: "pull,push",
            what: `starting upload of ${what}`,
        });
        const location = header(res, "location");
        if (res.status !== 202 || location === undefined) {
            throw await this.unexpected(res, `starting upload of ${what}`);
        }
        await res.body.dump();
        return location;
    }

    /** `PUT <location>?digest=` with the last bytes (or none): commits the upload. */
    private async finishUpload(location: string, digest: string, body: Buffer, what: string): Promise<void> {
        const url = await this.client.resolve(location);
        url.searchParams.set("digest", digest);
        const res = await this.client.send({
            method: "PUT",
            url: url.toString(),
            repository: this.repository,
            actions: "pull,push",
            headers: { "content-type": "application/octet-stream" },
            body,
            what: `uploading ${what}`,
        });
        if (res.status !== 201) {
            const text = await readErrorText(res);
            const codes = errorCodes(text);
            if (codes.includes("DIGEST_INVALID") || codes.includes("SIZE_INVALID")) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `uploading ${what}: the registry refused it (${describeErrorBody(text)})`,
                );
            }
            throw new AirgapError(
                "ERR_NETWORK",
                `uploading ${what}: registry answered ${res.status} (${describeErrorBody(text)})`,
            );
        }
        await res.body.dump();
        const stored = header(res, "docker-content-digest");
        if (stored !== undefined && stored !== digest) {
            throw new AirgapError("ERR_VERIFICATION", `uploading ${what}: the registry stored it as ${stored}`);
        }
    }

    private async chunkedUpload(location: string, verified: Readable, digest: string, what: string): Promise<void> {
        let offset = 0;
        let parts: Buffer[] = [];
        let pending = 0;
        let current = location;
        const send = async (chunk: Buffer): Promise<void> => {
            current = await this.patchChunk(current, chunk, offset, what);
            offset += chunk.length;
        };
        const flush = async (): Promise<void> => {
            const chunk = Buffer.concat(parts);
            parts = [];
            pending = 0;
            await send(chunk);
        };
        for await (const data of verified) {
            parts.push(data as Buffer);
            pending += (data as Buffer).length;
            if (pending >= this.chunkSize) {
                // Sources may deliver more than a chunk at once: send whole chunks, keep the rest.
                let all = Buffer.concat(parts);
                while (all.length >= this.chunkSize) {
                    await send(all.subarray(0, this.chunkSize));
                    all = all.subarray(this.chunkSize);
                }
                parts = all.length === 0 ? [] : [all];
                pending = all.length;
            }
        }
        // The verifier ended without error: the bytes are the blob. Only now is the upload committed.
        if (pending > 0) {
            await flush();
        }
        await this.finishUpload(current, digest, Buffer.alloc(0), what);
    }

    /**
     * Sends `chunk` at `offset`; returns the next upload location. After a failure it asks the
     * registry how much it holds and sends the rest of the chunk from there.
     */
    private async patchChunk(location: string, chunk: Buffer, offset: number, what: string): Promise<string> {
        let current = location;
        let start = offset;
        for (let attempt = 1; ; attempt++) {
            const body = chunk.subarray(start - offset);
            const where = `uploading ${what} (bytes ${start}-${start + body.length - 1})`;
            let res: RegistryResponse | undefined;
            let failure: unknown;
            try {
                res = await this.client.send({
                    method: "PATCH",
                    url: current,
                    repository: this.repository,
                    actions: "pull,push",
                    headers: {
                        "content-type": "application/octet-stream",
                        "content-range": `${start}-${start + body.length - 1}`,
                    },
                    body,
                    what: where,
                    retry: false,
                });
            } catch (err) {
                // Without retries, the client reports failed connections as ERR_NETWORK.
                if ((err as { code?: unknown }).code !== "ERR_NETWORK") {
                    throw err;
                }
                failure = err;
            }
            if (res !== undefined) {
                if (res.status === 202) {
                    await res.body.dump();
                    return header(res, "location") ?? current;
                }
                if (!isRetriableStatus(res.status)) {
                    throw await this.unexpected(res, where);
                }
                failure = await this.unexpected(res, where);
            }
            if (attempt >= this.chunkAttempts) {
                throw new AirgapError(
                    "ERR_NETWORK",
                    `uploading ${what}: chunk at byte ${start} failed ${attempt} times`,
                    { cause: failure },
                );
            }
            await new Promise((r) => setTimeout(r, retryDelay(attempt)));
            const status = await this.uploadStatus(current, what);
            current = status.location;
            if (status.size < offset || status.size > offset + chunk.length) {
                throw new AirgapError(
                    "ERR_NETWORK",
                    `uploading ${what}: after a failed chunk the registry holds ${status.size} bytes, ` +
                        `outside the chunk ${offset}-${offset + chunk.length - 1}`,
                    { cause: failure },
                );
            }
            if (status.size === offset + chunk.length) {
                return current;
            }
            start = status.size;
        }
    }

    private async uploadStatus(location: string, what: string): Promise<{ size: number; location: string }> {
        const res = await this.client.send({
            method: "GET",
            url: location,
            repository: this.repository,
            actions: "pull,push",
            what: `status of the upload of ${what}`,
        });
        if (res.status !== 204 && res.status !== 200) {
            throw await this.unexpected(res, `status of the upload of ${what}`);
        }
        await res.body.dump();
        const size = uploadedBytes(header(res, "range"));
        if (size === undefined) {
            throw new AirgapError(
                "ERR_NETWORK",
                `status of the upload of ${what}: no usable Range header (${JSON.stringify(header(res, "range"))})`,
            );
        }
        return { size, location: header(res, "location") ?? location };
    }

    private async cancelUpload(location: string, what: string): Promise<void> {
        try {
            const res = await this.client.send({
                method: "DELETE",
                url: location,
                repository: this.repository,
                actions: "pull,push",
                what: `cancelling the upload of ${what}`,
                retry: false,
            });
            await res.body.dump();
        } catch {
            // Best effort: the registry purges abandoned uploads itself.
        }
    }

    private async unexpected(res: RegistryResponse, what: string): Promise<AirgapError> {
        const text = await readErrorText(res);
        return new AirgapError("ERR_NETWORK", `${what}: registry answered ${res.status} (${describeErrorBody(text)})`);
    }

    async putManifest(bytes: Buffer, mediaType: string, tagOrDigest?: string): Promise<string> {
        const parsed = parseManifest(bytes, mediaType);
        const ref = this.location.reference;
        let digest = parsed.digest;
        let target: string;
        if (tagOrDigest !== undefined && isDigest(tagOrDigest)) {
            digest = digestOf(bytes, parseDigest(tagOrDigest).algorithm);
            if (digest !== tagOrDigest) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `manifest for ${this.name}@${tagOrDigest}: the bytes given have digest ${digest}`,
                );
            }
            target = digest;
        } else if (tagOrDigest !== undefined) {
            target = withTag(ref, tagOrDigest).tag!;
        } else if (ref.tag !== undefined) {
            target = ref.tag;
        } else if (ref.digest !== undefined) {
            if (ref.digest !== digestOf(bytes, parseDigest(ref.digest).algorithm)) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `manifest for ${this.name}@${ref.digest}: the bytes given have digest ${digest}`,
                );
            }
            digest = ref.digest;
            target = ref.digest;
        } else {
            target = "latest";
        }
        const what = `manifest ${this.name}${isDigest(target) ? "@" : ":"}${target}`;
        const res = await this.client.send({
            method: "PUT",
            url: `/v2/${this.repository}/manifests/${target}`,
            repository: this.repository,
            actions: "pull,push",
            headers: { "content-type": parsed.mediaType },
            body: bytes,
            what: `pushing ${what}`,
        });
        if (res.status !== 201) {
            const text = await readErrorText(res);
            const codes = errorCodes(text);
            if (codes.some((c) => c === "MANIFEST_BLOB_UNKNOWN" || c === "BLOB_UNKNOWN" || c === "MANIFEST_UNKNOWN")) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `pushing ${what}: the registry misses content it references (${describeErrorBody(text)}); put blobs and child manifests first`,
                );
            }
            throw new AirgapError(
                "ERR_NETWORK",
                `pushing ${what}: registry answered ${res.status} (${describeErrorBody(text)})`,
            );
        }
        await res.body.dump();
        const stored = header(res, "docker-content-digest");
        if (
            stored !== undefined &&
            isDigest(stored) &&
            parseDigest(stored).algorithm === parseDigest(digest).algorithm
        ) {
            if (stored !== digest) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `pushing ${what}: the registry stored it as ${stored}, not ${digest}`,
                );
            }
        }
        return digest;
    }

    /**
     * Deletes the manifest `digest` (and so every tag pointing at it) from the repository.
     * False when it was not there. Blobs are left to the registry's garbage collection.
     */
    async deleteManifest(digest: string): Promise<boolean> {
        parseDigest(digest);
        const what = `deleting manifest ${this.name}@${digest}`;
        const res = await this.client.send({
            method: "DELETE",
            url: `/v2/${this.repository}/manifests/${digest}`,
            repository: this.repository,
            actions: "delete",
            what,
        });
        if (res.status === 202 || res.status === 200) {
            await res.body.dump();
            return true;
        }
        if (res.status === 404) {
            await res.body.dump();
            return false;
        }
        throw await this.unexpected(res, what);
    }

    async listTags(): Promise<string[]> {
        return listTags(this.client, this.repository, true);
    }

    async hasManifest(digest: string): Promise<boolean> {
        parseDigest(digest);
        return (await headManifest(this.client, this.repository, digest)) !== undefined;
    }

    async tagDigest(tag: string): Promise<string | undefined> {
        return (await headManifest(this.client, this.repository, withTag(this.location.reference, tag).tag!))?.digest;
    }

    /** The digest and media type a tag or digest names now; undefined when absent. */
    async manifestHead(reference: string): Promise<ManifestHead | undefined> {
        return headManifest(this.client, this.repository, reference);
    }

    /** The manifest stored under `digest`, verified. */
    async getManifest(digest: string): Promise<ManifestBlob> {
        parseDigest(digest);
        return fetchManifest(this.client, this.repository, digest);
    }

    /** Deletes a tag only (OCI distribution spec 1.1); "unsupported" where the registry refuses it. */
    async deleteTag(tag: string): Promise<TagDeletion> {
        return deleteTag(this.client, this.repository, withTag(this.location.reference, tag).tag!);
    }

    async commit(): Promise<void> {}

    async close(): Promise<void> {
        await this.client.close();
    }
}

async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
        chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
}
