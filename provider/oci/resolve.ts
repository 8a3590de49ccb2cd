/**
 * Resolving image tags to digests: the step that builds the image part of a lock while the
 * program runs (also during preview), so that a moved tag shows as a changed input.
 *
 * Each reference's manifest is fetched (GET, every supported media type accepted) and its digest
 * is the digest of the exact bytes served, checked against the registry's `Docker-Content-Digest`.
 * A reference already pinned by digest is checked to exist and returned as it is.
 */

import { AirgapError, isAirgapError } from "../errors";
import { fullString, parseDockerReference, type DockerReference } from "./reference";
import { RegistryClient } from "./registry_client";
import { fetchManifest } from "./registry_src";
import type { RegistryOptions } from "./registry_transport";
import { forEachLimited } from "../store/concurrency";

export interface ResolveOptions {
    /** How to reach registries: one set of options, or the options for a registry domain. */
    readonly registry?: RegistryOptions | ((domain: string) => RegistryOptions);
    /** Manifests fetched at the same time. Defaults to 8. */
    readonly concurrency?: number;
}

export interface ResolvedImage {
    readonly digest: string;
    readonly mediaType: string;
}

function parseRef(s: string): DockerReference {
    return parseDockerReference(s.startsWith("docker://") ? s.slice("docker://".length) : s);
}

/**
 * The digest and media type of each reference ("quay.io/org/app:1.0", "docker://...",
 * "app@sha256:..."), keyed by the string as given. References without tag or digest mean
 * ":latest". Every reference is tried; when some fail, the error names each of them (with the
 * first failure's code).
 */
export async function resolveImages(
    refs: readonly string[],
    options: ResolveOptions = {},
): Promise<Map<string, ResolvedImage>> {
    const parsed = refs.map((s) => ({ s, ref: parseRef(s) }));
    const concurrency = options.concurrency ?? 8;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
        throw new AirgapError("ERR_INVALID_ARGUMENT", `concurrency: must be a positive integer, got ${concurrency}`, {
            argument: "concurrency",
        });
    }
    const clients = new Map<string, RegistryClient>();
    const clientFor = (domain: string): RegistryClient => {
        let client = clients.get(domain);
        if (client === undefined) {
            const r = options.registry;
            client = new RegistryClient(domain, typeof r === "function" ? r(domain) : (r ?? {}));
            clients.set(domain, client);
        }
        return client;
    };
    const out = new Map<string, ResolvedImage>();
    const failures: { i: number; s: string; error: unknown }[] = [];
    const resolveOne = async ({ s, ref }: (typeof parsed)[number], i: number): Promise<void> => {
        try {
            const manifest = await fetchManifest(clientFor(ref.domain), ref.path, ref.digest ?? ref.tag ?? "latest");
            out.set(s, { digest: manifest.digest, mediaType: manifest.mediaType });
        } catch (error) {
            failures.push({ i, s, error });
        }
    };
    try {
        await forEachLimited(parsed, concurrency, resolveOne);
    } finally {
        await Promise.all([...clients.values()].map((c) => c.close()));
    }
    failures.sort((a, b) => a.i - b.i);
    if (failures.length === 1) {
        throw failures[0]!.error;
    }
    if (failures.length > 1) {
        const first = failures[0]!.error;
        throw new AirgapError(
            isAirgapError(first) ? first.code : "ERR_NETWORK",
            `resolving ${failures.length} of ${refs.length} images failed:\n` +
                failures
                    .map(({ s, error }) => `  ${fullString(parseRef(s))}: ${(error as Error).message ?? String(error)}`)
                    .join("\n"),
            { cause: failures.map((f) => f.error) },
        );
    }
    return new Map(refs.filter((s) => out.has(s)).map((s) => [s, out.get(s)!]));
}

/** Source reference → digest; see `resolveImages`. */
export async function resolveTags(refs: readonly string[], options: ResolveOptions = {}): Promise<Map<string, string>> {
    const resolved = await resolveImages(refs, options);
    return new Map([...resolved].map(([s, r]) => [s, r.digest]));
}
