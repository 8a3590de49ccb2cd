/**
 * What a registry repository holds and removing from it, for the ownership checks of ImageMirror:
 * where a tag points (HEAD), whether a manifest is there, and deleting a tag (OCI distribution
 * spec 1.1: `DELETE /v2/<name>/manifests/<tag>`) or a manifest by digest.
 *
 * Registries that predate tag deletion refuse it: docker-registry (distribution 2.8) answers
 * 400 DIGEST_INVALID and keeps the tag; others answer 405 or UNSUPPORTED. Deleting a manifest by
 * digest removes every tag pointing at it.
 */

import { AirgapError } from "../errors";
import { isDigest, parseDigest } from "./digest";
import { SUPPORTED_MANIFEST_MEDIA_TYPES } from "./manifest";
import { describeErrorBody, errorCodes, header, type RegistryClient, readErrorText } from "./registry_client";
import { fetchManifest } from "./registry_src";

/** A manifest as HEAD describes it. */
export interface ManifestHead {
    readonly digest: string;
    readonly mediaType: string;
}

/** What a tag delete did. */
export type TagDeletion = "deleted" | "absent" | "unsupported";

/**
 * The manifest a tag or digest names in `repository`, or undefined when there is none (404, or
 * the repository does not exist). A registry that sends no `Docker-Content-Digest` on HEAD is
 * asked with GET, and the digest computed.
 */
export async function headManifest(
    client: RegistryClient,
    repository: string,
    reference: string,
): Promise<ManifestHead | undefined> {
    const what = `manifest ${client.domain}/${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
    const res = await client.send({
        method: "HEAD",
        url: `/v2/${repository}/manifests/${reference}`,
        repository,
        actions: "pull",
        headers: { accept: SUPPORTED_MANIFEST_MEDIA_TYPES.join(", ") },
        what,
    });
    await res.body.dump();
    if (res.status === 404) {
        return undefined;
    }
    if (res.status !== 200) {
        throw new AirgapError("ERR_NETWORK", `checking ${what}: registry answered ${res.status}`);
    }
    const digest = header(res, "docker-content-digest");
    const mediaType = (header(res, "content-type") ?? "").split(";")[0]!.trim();
    if (digest !== undefined && isDigest(digest) && mediaType !== "") {
        if (isDigest(reference) && parseDigest(reference).algorithm === parseDigest(digest).algorithm) {
            if (digest !== reference) {
                throw new AirgapError("ERR_VERIFICATION", `checking ${what}: the registry says it is ${digest}`);
            }
        }
        return { digest, mediaType };
    }
    const got = await fetchManifest(client, repository, reference);
    return { digest: got.digest, mediaType: got.mediaType };
}

/** Deletes the tag `tag` of `repository` (not the manifest it names), where the registry supports it. */
export async function deleteTag(client: RegistryClient, repository: string, tag: string): Promise<TagDeletion> {
    if (isDigest(tag)) {
        throw new AirgapError("ERR_INVALID_ARGUMENT", `deleteTag: "${tag}" is a digest, not a tag`);
    }
    const what = `deleting tag ${client.domain}/${repository}:${tag}`;
    const res = await client.send({
        method: "DELETE",
        url: `/v2/${repository}/manifests/${tag}`,
        repository,
        actions: "delete",
        what,
        retry: false,
    });
    if (res.status === 202 || res.status === 200 || res.status === 204) {
        await res.body.dump();
        return "deleted";
    }
    const text = await readErrorText(res);
    const codes = errorCodes(text);
    if (res.status === 404 && (codes.includes("MANIFEST_UNKNOWN") || codes.includes("NAME_UNKNOWN"))) {
        return "absent";
    }
    if (
        res.status === 405 ||
        res.status === 404 ||
        (res.status === 400 && (codes.includes("DIGEST_INVALID") || codes.includes("UNSUPPORTED"))) ||
        codes.includes("UNSUPPORTED")
    ) {
        return "unsupported";
    }
    throw new AirgapError("ERR_NETWORK", `${what}: registry answered ${res.status} (${describeErrorBody(text)})`);
}
