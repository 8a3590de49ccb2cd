/**
 * The `docker://` transport: images in a registry, read and written through the OCI distribution
 * API (`registry_client.ts`).
 *
 *     docker://host[:port]/repo[:tag][@digest]
 *
 * Parsing is in `transports.ts` (a reference as `reference.ts` defines it). This file opens
 * sources and destinations, and holds what they may share: a record of which repositories of a
 * registry are known to hold a blob, so that a destination can mount a blob from a sibling
 * repository instead of uploading it again.
 */

import { RegistryClient, type RegistryOptions } from "./registry_client";
import { RegistryImageDestination, type RegistryDestinationOptions } from "./registry_dest";
import { RegistryImageSource, type RegistrySourceOptions } from "./registry_src";
import type { DockerLocation } from "./types";

export type { RegistryOptions } from "./registry_client";

/**
 * Which repositories of which registries are known to hold a blob: filled by registry sources
 * (from the manifests they serve) and destinations (from what they find or push), read by
 * destinations to mount blobs across repositories. Share one between the sources and destinations
 * of a sync. Knowledge is a hint: a mount that fails falls back to an upload.
 */
export class BlobLocationCache {
    private readonly byBlob = new Map<string, Set<string>>();

    /** Records that `repository` of `domain` holds `digest`. */
    record(domain: string, repository: string, digest: string): void {
        const key = `${domain} ${digest}`;
        let repos = this.byBlob.get(key);
        if (repos === undefined) {
            repos = new Set();
            this.byBlob.set(key, repos);
        }
        repos.add(repository);
    }

    /** Repositories of `domain` other than `except` known to hold `digest`, most recently recorded first. */
    candidates(domain: string, digest: string, except: string): string[] {
        const repos = this.byBlob.get(`${domain} ${digest}`);
        return repos === undefined ? [] : [...repos].filter((r) => r !== except).reverse();
    }
}

export interface OpenRegistryOptions extends RegistryOptions, RegistrySourceOptions, RegistryDestinationOptions {}

/** Opens an image in a registry for reading. Nothing is requested until the first call. */
export async function openRegistrySource(
    location: DockerLocation,
    options: OpenRegistryOptions = {},
): Promise<RegistryImageSource> {
    return new RegistryImageSource(location, new RegistryClient(location.reference.domain, options), options);
}

/** Opens a repository of a registry for writing. Nothing is requested until the first call. */
export async function openRegistryDestination(
    location: DockerLocation,
    options: OpenRegistryOptions = {},
): Promise<RegistryImageDestination> {
    return new RegistryImageDestination(location, new RegistryClient(location.reference.domain, options), options);
}
