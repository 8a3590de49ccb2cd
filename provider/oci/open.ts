/**
 * Opening an image location, whatever its transport: the one place that maps `docker://`,
 * `oci:` and `oci-archive:` to their sources and destinations. Callers (copy, the dynamic
 * provider, benchmarks) hold only `ImageSource` / `ImageDestination` afterwards.
 */

import type { OciArchiveSourceOptions } from "./archive_src";
import type { OciLayoutDestinationOptions } from "./layout_dest";
import {
    openOciArchiveDestination,
    openOciArchiveSource,
    openOciLayoutDestination,
    openOciLayoutSource,
} from "./layout_transport";
import type { RegistryDestinationOptions } from "./registry_dest";
import type { RegistrySourceOptions } from "./registry_src";
import {
    type BlobLocationCache,
    openRegistryDestination,
    openRegistrySource,
    type RegistryOptions,
    type RegistrySession,
} from "./registry_transport";
import { parseImageLocation } from "./transports";
import type { ImageDestination, ImageLocation, ImageSource } from "./types";

export interface OpenImageOptions {
    /**
     * How to reach registries (`docker://`): one set of options, or a function giving the options
     * for a registry domain (e.g. credentials and CA per registry). Defaults to HTTPS, verified,
     * anonymous.
     */
    readonly registry?: RegistryOptions | ((domain: string) => RegistryOptions);
    /** Shared between the registry sources and destinations of a sync: enables cross-repository mounts. */
    readonly blobLocations?: BlobLocationCache;
    /**
     * The registry session of a sync: its clients (one per registry), connections and blob-location
     * cache are used, and `registry` and `blobLocations` are ignored for `docker://` locations.
     */
    readonly session?: RegistrySession;
    /** Registry sources only. */
    readonly registrySource?: Omit<RegistrySourceOptions, "blobLocations">;
    /** Registry destinations only: chunked upload threshold and size. */
    readonly registryDestination?: Omit<RegistryDestinationOptions, "blobLocations">;
    /** `oci:` and `oci-archive:` destinations. */
    readonly layout?: OciLayoutDestinationOptions;
    /** `oci-archive:` sources. */
    readonly archive?: OciArchiveSourceOptions;
}

function registryOptionsFor(domain: string, options: OpenImageOptions): RegistryOptions {
    const r = options.registry;
    return typeof r === "function" ? r(domain) : (r ?? {});
}

function locationOf(location: ImageLocation | string): ImageLocation {
    return typeof location === "string" ? parseImageLocation(location) : location;
}

/** Opens a location (parsed or as a `transport:reference` string) for reading. */
export async function openImageSource(
    location: ImageLocation | string,
    options: OpenImageOptions = {},
): Promise<ImageSource> {
    const loc = locationOf(location);
    switch (loc.transport) {
        case "docker":
            return openRegistrySource(
                loc,
                {
                    ...registryOptionsFor(loc.reference.domain, options),
                    ...options.registrySource,
                    ...(options.blobLocations === undefined ? {} : { blobLocations: options.blobLocations }),
                },
                options.session,
            );
        case "oci":
            return openOciLayoutSource(loc);
        case "oci-archive":
            return openOciArchiveSource(loc, options.archive);
    }
}

/** Opens a location (parsed or as a `transport:reference` string) for writing. */
export async function openImageDestination(
    location: ImageLocation | string,
    options: OpenImageOptions = {},
): Promise<ImageDestination> {
    const loc = locationOf(location);
    switch (loc.transport) {
        case "docker":
            return openRegistryDestination(
                loc,
                {
                    ...registryOptionsFor(loc.reference.domain, options),
                    ...options.registryDestination,
                    ...(options.blobLocations === undefined ? {} : { blobLocations: options.blobLocations }),
                },
                options.session,
            );
        case "oci":
            return openOciLayoutDestination(loc, options.layout);
        case "oci-archive":
            return openOciArchiveDestination(loc, options.layout);
    }
}
