/**
 * Reading images from a registry.
 *
 * Manifests are read whole (at most `MAX_MANIFEST_SIZE`) and checked against their digest: the
 * digest asked for, or, by tag, the sha256 of the bytes, which MUST equal the registry's
 * `Docker-Content-Digest` when it sends one. Blobs are streamed; a connection lost in the middle
 * of a blob is resumed with a `Range` request from the byte reached, so memory stays independent
 * of blob size and a flaky link does not restart large layers.
 */

import { PassThrough, type Readable } from "node:stream";
import { contentLengthOf, readBodyCapped, readJsonCapped } from "../http/body";
import { retryDelay } from "../http/retry";
import { AirgapError, isAirgapError } from "../errors";
import { DigestVerifier, digestOf, isDigest, parseDigest } from "./digest";
import { parseManifest, references, SUPPORTED_MANIFEST_MEDIA_TYPES } from "./manifest";
import { fullName } from "./reference";
import {
    errorCodes,
    header,
    isRetriableNetworkError,
    nextLink,
    type RegistryClient,
    type RegistryResponse,
    readErrorText,
    describeErrorBody,
} from "./registry_client";
import type { BlobLocationCache } from "./registry_transport";
import type { BlobReader, DockerLocation, ImageSource, ManifestBlob } from "./types";

/** Manifests larger than this are refused rather than read into memory (as other clients do). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/** One page of a tag list larger than this is refused. */
export const MAX_TAG_LIST_PAGE_SIZE = 16 * 1024 * 1024;

export interface RegistrySourceOptions {
    /**
     * Verify blobs while they stream out of `getBlob` (ERR_VERIFICATION at the end of the stream).
     * Defaults to false: destinations verify what they write, and hashing twice costs time.
     */
    readonly verifyBlobs?: boolean;
    /** Where to record which repository holds which blob (for cross-repository mounts). */
    readonly blobLocations?: BlobLocationCache;
    /** How often a blob download is resumed after a lost connection. Defaults to 3. */
    readonly blobResumes?: number;
}

/** The media type a registry served, when it is meaningful (not a generic JSON or text type). */
export function servedMediaType(contentType: string | undefined): string | undefined {
    if (contentType === undefined) {
        return undefined;
    }
    const base = contentType.split(";")[0]!.trim().toLowerCase();
    return base === "" || base === "application/json" || base === "text/plain" || base === "application/octet-stream"
        ? undefined
        : base;
}

/** Reads a manifest body, refusing more than `MAX_MANIFEST_SIZE` bytes (ERR_TOO_LARGE). */
export async function readManifestBody(res: RegistryResponse, what: string): Promise<Buffer> {
    try {
        return await readBodyCapped(res.body, MAX_MANIFEST_SIZE, what, {
            declaredLength: contentLengthOf(res.headers),
        });
    } catch (cause) {
        if (isAirgapError(cause)) {
            throw cause;
        }
        throw new AirgapError("ERR_NETWORK", `reading ${what}`, { cause });
    }
}

/**
 * Fetches a manifest by tag or digest with every supported media type accepted, and checks its
 * digest. Shared by sources and `resolveTags`.
 */
export async function fetchManifest(
    client: RegistryClient,
    repository: string,
    tagOrDigest: string,
): Promise<ManifestBlob> {
    const byDigest = isDigest(tagOrDigest);
    const repo = `${client.domain}/${repository}`;
    const what = byDigest ? `manifest ${repo}@${tagOrDigest}` : `manifest ${repo}:${tagOrDigest}`;
    const res = await client.send({
        method: "GET",
        url: `/v2/${repository}/manifests/${tagOrDigest}`,
        repository,
        actions: "pull",
        headers: { accept: SUPPORTED_MANIFEST_MEDIA_TYPES.join(", ") },
        what,
    });
    if (res.status === 404) {
        const codes = errorCodes(await readErrorText(res));
        if (codes.includes("NAME_UNKNOWN")) {
            throw new AirgapError("ERR_NOT_FOUND", `repository ${repo} not found (looking for ${what})`);
        }
        throw new AirgapError(
            "ERR_NOT_FOUND",
            byDigest
                ? `manifest ${tagOrDigest} not found in repo ${repo}`
                : `tag ${tagOrDigest} not found in repo ${repo}`,
        );
    }
    if (res.status !== 200) {
        const text = await readErrorText(res);
        throw new AirgapError("ERR_NETWORK", `${what}: registry answered ${res.status} (${describeErrorBody(text)})`);
    }
    const bytes = await readManifestBody(res, what);
    let digest: string;
    if (byDigest) {
        digest = digestOf(bytes, parseDigest(tagOrDigest).algorithm);
        if (digest !== tagOrDigest) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${what}: the registry served bytes with digest ${digest}, not the digest asked for`,
            );
        }
    } else {
        digest = digestOf(bytes);
        const claimed = header(res, "docker-content-digest");
        if (claimed !== undefined && claimed !== "") {
            const actual = isDigest(claimed) ? digestOf(bytes, parseDigest(claimed).algorithm) : undefined;
            if (actual !== claimed) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `${what}: the registry says Docker-Content-Digest ${claimed}, but the bytes served have digest ${digest}`,
                );
            }
        }
    }
    const parsed = parseManifest(bytes, servedMediaType(header(res, "content-type")));
    return { bytes, mediaType: parsed.mediaType, digest };
}

export class RegistryImageSource implements ImageSource {
    private readonly repository: string;
    /** Manifests fetched by digest (they are small, and a source is one image's). */
    private readonly fetched = new Map<string, ManifestBlob>();

    constructor(
        public readonly location: DockerLocation,
        private readonly client: RegistryClient,
        private readonly options: RegistrySourceOptions = {},
    ) {
        this.repository = location.reference.path;
    }

    /** The repository as `domain/path`, for messages. */
    private get name(): string {
        return fullName(this.location.reference);
    }

    async getManifest(digest?: string): Promise<ManifestBlob> {
        const ref = this.location.reference;
        const wanted = digest ?? ref.digest ?? ref.tag ?? "latest";
        if (digest !== undefined) {
            parseDigest(digest);
        }
        // By digest, a manifest never changes: a sync reads it again (to count what it holds)
        // without asking the registry twice.
        const known = isDigest(wanted) ? this.fetched.get(wanted) : undefined;
        if (known !== undefined) {
            return known;
        }
        const manifest = await fetchManifest(this.client, this.repository, wanted);
        if (isDigest(wanted)) {
            this.fetched.set(wanted, manifest);
        }
        const cache = this.options.blobLocations;
        if (cache !== undefined) {
            const { blobs, children } = references(parseManifest(manifest.bytes, manifest.mediaType));
            for (const d of [...blobs, ...children]) {
                cache.record(this.client.domain, this.repository, d.digest);
            }
        }
        return manifest;
    }

    async getBlob(digest: string): Promise<BlobReader> {
        parseDigest(digest);
        const what = `blob ${digest} of ${this.name}`;
        const first = await this.requestBlob(digest, 0, what);
        const length = header(first, "content-length");
        const size = length === undefined ? undefined : Number(length);
        const out = new PassThrough();
        void this.pump(first, out, digest, what);
        let stream: Readable = out;
        if (this.options.verifyBlobs === true) {
            const verifier = new DigestVerifier(size === undefined ? { digest } : { digest, size });
            out.on("error", (e) => verifier.destroy(e));
            verifier.on("close", () => out.destroy());
            stream = out.pipe(verifier);
        }
        return size === undefined ? { stream } : { stream, size };
    }

    /** GET of a blob from byte `from` on (a Range request when `from` > 0). */
    private async requestBlob(digest: string, from: number, what: string): Promise<RegistryResponse> {
        const res = await this.client.send({
            method: "GET",
            url: `/v2/${this.repository}/blobs/${digest}`,
            repository: this.repository,
            actions: "pull",
            headers: from > 0 ? { range: `bytes=${from}-` } : {},
            what,
        });
        if (res.status === 404) {
            await res.body.dump();
            throw new AirgapError("ERR_NOT_FOUND", `${what}: not found`);
        }
        if (res.status !== 200 && res.status !== 206) {
            const text = await readErrorText(res);
            throw new AirgapError(
                "ERR_NETWORK",
                `${what}: registry answered ${res.status} (${describeErrorBody(text)})`,
            );
        }
        return res;
    }

    /** Copies the body into `out`, resuming after lost connections; errors end up on `out`. */
    private async pump(first: RegistryResponse, out: PassThrough, digest: string, what: string): Promise<void> {
        let res = first;
        let received = 0;
        let skip = 0;
        let resumes = 0;
        const maxResumes = this.options.blobResumes ?? 3;
        let current = res.body;
        const stop = (): void => {
            current.destroy();
        };
        out.on("close", stop);
        try {
            while (true) {
                try {
                    for await (const chunk of current) {
                        let b = chunk as Buffer;
                        if (skip > 0) {
                            const drop = Math.min(skip, b.length);
                            skip -= drop;
                            b = b.subarray(drop);
                            if (b.length === 0) {
                                continue;
                            }
                        }
                        received += b.length;
                        if (!out.write(b)) {
                            await drained(out);
                        }
                        if (out.destroyed) {
                            return;
                        }
                    }
                    out.end();
                    return;
                } catch (err) {
                    if (out.destroyed) {
                        return;
                    }
                    if (!isRetriableNetworkError(err) || resumes >= maxResumes) {
                        const tries = resumes > 0 ? ` (after resuming ${resumes} times)` : "";
                        out.destroy(
                            new AirgapError(
                                "ERR_NETWORK",
                                `${what}: the connection failed after ${received} bytes${tries}: ${(err as Error).message ?? String(err)}`,
                                { cause: err },
                            ),
                        );
                        return;
                    }
                    resumes++;
                    await new Promise((r) => setTimeout(r, retryDelay(resumes)));
                    res = await this.requestBlob(digest, received, what);
                    // A registry that ignores Range sends everything again: drop what was already passed on.
                    skip = res.status === 206 ? 0 : received;
                    current = res.body;
                }
            }
        } catch (err) {
            out.destroy(err as Error);
        } finally {
            out.off("close", stop);
        }
    }

    async hasBlob(digest: string): Promise<boolean> {
        return headBlob(this.client, this.repository, digest, "pull", this.options.blobLocations);
    }

    async listTags(): Promise<string[]> {
        return listTags(this.client, this.repository, false);
    }

    async close(): Promise<void> {
        await this.client.close();
    }
}

function drained(stream: PassThrough): Promise<void> {
    return new Promise((resolve) => {
        const done = (): void => {
            stream.off("drain", done);
            stream.off("close", done);
            resolve();
        };
        stream.on("drain", done);
        stream.on("close", done);
    });
}

/** HEAD of a blob: true on 200, false on 404. */
export async function headBlob(
    client: RegistryClient,
    repository: string,
    digest: string,
    actions: "pull" | "pull,push",
    cache: BlobLocationCache | undefined,
): Promise<boolean> {
    parseDigest(digest);
    const what = `blob ${digest} of ${client.domain}/${repository}`;
    const res = await client.send({
        method: "HEAD",
        url: `/v2/${repository}/blobs/${digest}`,
        repository,
        actions,
        what,
    });
    await res.body.dump();
    if (res.status === 200) {
        cache?.record(client.domain, repository, digest);
        return true;
    }
    if (res.status === 404) {
        return false;
    }
    throw new AirgapError("ERR_NETWORK", `checking ${what}: registry answered ${res.status}`);
}

/**
 * The tags of a repository, following `Link` pagination, sorted. A repository that does not exist
 * is ERR_NOT_FOUND, or has no tags when `missingIsEmpty`.
 */
export async function listTags(client: RegistryClient, repository: string, missingIsEmpty: boolean): Promise<string[]> {
    const tags: string[] = [];
    let url: string | undefined = `/v2/${repository}/tags/list`;
    const what = `tags of ${client.domain}/${repository}`;
    for (let page = 0; url !== undefined; page++) {
        if (page > 10_000) {
            throw new AirgapError("ERR_NETWORK", `${what}: too many pages`);
        }
        const res = await client.send({ method: "GET", url, repository, actions: "pull", what });
        if (res.status === 404) {
            await res.body.dump();
            if (missingIsEmpty) {
                return [];
            }
            throw new AirgapError("ERR_NOT_FOUND", `repository ${client.domain}/${repository} not found`);
        }
        if (res.status !== 200) {
            const text = await readErrorText(res);
            throw new AirgapError(
                "ERR_NETWORK",
                `${what}: registry answered ${res.status} (${describeErrorBody(text)})`,
            );
        }
        let doc: { tags?: unknown } | null;
        try {
            doc = (await readJsonCapped(res.body, MAX_TAG_LIST_PAGE_SIZE, what, {
                declaredLength: contentLengthOf(res.headers),
            })) as { tags?: unknown } | null;
        } catch (cause) {
            if (isAirgapError(cause)) {
                throw cause;
            }
            throw new AirgapError("ERR_NETWORK", `reading ${what}`, { cause });
        }
        if (typeof doc === "object" && doc !== null && Array.isArray(doc.tags)) {
            tags.push(...doc.tags.filter((t): t is string => typeof t === "string"));
        }
        url = nextLink(header(res, "link"), res.url)?.toString();
    }
    return [...new Set(tags)].sort();
}
