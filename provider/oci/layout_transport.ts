/**
 * The `oci:` and `oci-archive:` transports: location syntax and opening sources/destinations.
 *
 *     oci:<directory>[:<reference>]
 *     oci-archive:<file.tar>[:<reference>]
 *
 * As in containers/image, the path ends at the first ":" (so it cannot contain one) and the
 * optional reference is an `org.opencontainers.image.ref.name` (e.g. "app-1.0", "v1", "org/app:1").
 */

import { AirgapError } from "../errors";
import { OciArchiveImageDestination } from "./archive_dest";
import { OciArchiveImageSource, type OciArchiveSourceOptions } from "./archive_src";
import { isValidRefName } from "./layout";
import { type OciLayoutDestinationOptions, OciLayoutImageDestination } from "./layout_dest";
import { OciLayoutImageSource } from "./layout_src";
import type { ImageDestination, ImageSource, OciArchiveLocation, OciLayoutLocation } from "./types";

/** Parses what follows `oci:` / `oci-archive:`; `whole` is the full string for error messages. */
export function parseOciLocation(
    transport: "oci" | "oci-archive",
    rest: string,
    whole: string,
): OciLayoutLocation | OciArchiveLocation {
    const colon = rest.indexOf(":");
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const reference = colon < 0 ? undefined : rest.slice(colon + 1);
    const what = transport === "oci" ? "layout directory" : "archive file";
    if (path === "") {
        throw new AirgapError(
            "ERR_PARSE",
            `invalid image location "${whole}": the ${what} path is empty (expected "${transport}:/path[:reference]")`,
        );
    }
    if (reference !== undefined && reference !== "" && !isValidRefName(reference)) {
        throw new AirgapError(
            "ERR_PARSE",
            `invalid image location "${whole}": "${reference}" is not a valid image reference name ` +
                `(components of letters and digits joined by ".", "_", "-", "--", ":", "@" or "+", separated by "/")`,
        );
    }
    return reference === undefined || reference === "" ? { transport, path } : { transport, path, reference };
}

export function formatOciLocation(location: OciLayoutLocation | OciArchiveLocation): string {
    return `${location.transport}:${location.path}${location.reference === undefined ? "" : `:${location.reference}`}`;
}

/** Opens an image in a layout directory for reading. ERR_NOT_FOUND when the directory is not a layout. */
export async function openOciLayoutSource(location: OciLayoutLocation): Promise<ImageSource> {
    return OciLayoutImageSource.open(location);
}

/** Opens a layout directory for writing, creating it (and `oci-layout`, `index.json`) when needed. */
export async function openOciLayoutDestination(
    location: OciLayoutLocation,
    options: OciLayoutDestinationOptions = {},
): Promise<ImageDestination> {
    return OciLayoutImageDestination.open(location, options);
}

/** Opens an image in an OCI archive for reading (extracting it to a temporary layout until `close`). */
export async function openOciArchiveSource(
    location: OciArchiveLocation,
    options: OciArchiveSourceOptions = {},
): Promise<ImageSource> {
    return OciArchiveImageSource.open(location, options);
}

/** Opens an OCI archive for writing; the archive is written (replaced) on `commit`. */
export async function openOciArchiveDestination(
    location: OciArchiveLocation,
    options: OciLayoutDestinationOptions = {},
): Promise<ImageDestination> {
    return OciArchiveImageDestination.open(location, options);
}
