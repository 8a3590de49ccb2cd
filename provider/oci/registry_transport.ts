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

import { Agent } from "undici";
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

/**
 * What the registry sources and destinations of one sync share: one client per registry (its
 * ping, authentication challenge and tokens learned once), one undici `Agent` for every client
 * whose options allow a shared one (no own `dispatcher`, `caPem` or unverified TLS: those keep a
 * pool of their own, one per registry), and one `BlobLocationCache`, so that a destination mounts
 * a blob any repository of the sync is known to hold instead of uploading it again.
 *
 * Sources and destinations opened with a session each hold its client and MUST be closed as
 * usual; `close` the session once at the end of the sync.
 */
export class RegistrySession {
    readonly blobLocations = new BlobLocationCache();
    private readonly clients = new Map<string, RegistryClient>();
    private agent: Agent | undefined;
    private closed = false;

    /** `optionsFor`: how to reach each registry domain (credentials, TLS, retries). */
    constructor(private readonly optionsFor: (domain: string) => RegistryOptions = () => ({})) {}

    /** The client of `domain`, made on first use. The caller MUST `close` it once when done. */
    client(domain: string): RegistryClient {
        if (this.closed) {
            throw new Error(`the registry session is closed (opening ${domain})`);
        }
        let client = this.clients.get(domain);
        if (client === undefined) {
            const options = this.optionsFor(domain);
            const ownTls =
                options.dispatcher !== undefined ||
                options.caPem !== undefined ||
                options.insecure === true ||
                options.insecure === "skip-verify";
            if (!ownTls) {
                this.agent ??= new Agent();
            }
            client = new RegistryClient(domain, ownTls ? options : { ...options, dispatcher: this.agent });
            this.clients.set(domain, client);
        }
        return client.retain();
    }

    /** Registries this session has a client for (for tests and reports). */
    get domains(): string[] {
        return [...this.clients.keys()];
    }

    /** Releases the session's hold on every client, then the shared agent. */
    async close(): Promise<void> {
        if (this.closed) {
            return;
        }
        this.closed = true;
        await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
        await this.agent?.close();
    }
}

export interface OpenRegistryOptions extends RegistryOptions, RegistrySourceOptions, RegistryDestinationOptions {}

/**
 * Opens an image in a registry for reading. Nothing is requested until the first call. With
 * `session`, its client and blob-location cache are used (the registry options come from it).
 */
export async function openRegistrySource(
    location: DockerLocation,
    options: OpenRegistryOptions = {},
    session?: RegistrySession,
): Promise<RegistryImageSource> {
    const domain = location.reference.domain;
    if (session !== undefined) {
        return new RegistryImageSource(location, session.client(domain), {
            ...options,
            blobLocations: session.blobLocations,
        });
    }
    return new RegistryImageSource(location, new RegistryClient(domain, options), options);
}

/** Opens a repository of a registry for writing. Nothing is requested until the first call. See `openRegistrySource`. */
export async function openRegistryDestination(
    location: DockerLocation,
    options: OpenRegistryOptions = {},
    session?: RegistrySession,
): Promise<RegistryImageDestination> {
    const domain = location.reference.domain;
    if (session !== undefined) {
        return new RegistryImageDestination(location, session.client(domain), {
            ...options,
            blobLocations: session.blobLocations,
        });
    }
    return new RegistryImageDestination(location, new RegistryClient(domain, options), options);
}
