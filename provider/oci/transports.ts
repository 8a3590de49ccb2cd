/**
 * Image locations as `transport:reference` strings, after containers/image's transports:
 *
 *     docker://host[:port]/repo[:tag][@digest]   an image in a registry
 *     oci:/path/to/layout[:reference]            an image in an OCI image layout directory
 *     oci-archive:/path/file.tar[:reference]     an image in a tar archive of an OCI layout
 *
 * Parsing is pure. `formatImageLocation` gives the canonical string (docker references in their
 * familiar form); for a canonical string `formatImageLocation(parseImageLocation(s)) === s`, and
 * `parseImageLocation(formatImageLocation(l))` equals `l` for every location.
 */

import { AirgapError } from "../errors";
import { formatOciLocation, parseOciLocation } from "./layout_transport";
import { familiarString, parseDockerReference } from "./reference";
import type { ImageLocation, TransportName } from "./types";

export const KNOWN_TRANSPORTS: readonly TransportName[] = ["docker", "oci", "oci-archive"];

/** Parses a location string; ERR_PARSE naming the string (and the known transports when that is the problem). */
export function parseImageLocation(s: string): ImageLocation {
    const colon = s.indexOf(":");
    const transport = colon < 0 ? "" : s.slice(0, colon);
    const rest = s.slice(colon + 1);
    switch (transport) {
        case "docker": {
            if (!rest.startsWith("//")) {
                throw new AirgapError(
                    "ERR_PARSE",
                    `invalid image location "${s}": a docker location is "docker://host/repo[:tag][@digest]"`,
                );
            }
            try {
                return { transport: "docker", reference: parseDockerReference(rest.slice(2)) };
            } catch (cause) {
                throw new AirgapError("ERR_PARSE", `invalid image location "${s}": ${messageOf(cause)}`, { cause });
            }
        }
        case "oci":
        case "oci-archive":
            return parseOciLocation(transport, rest, s);
        default: {
            const known = KNOWN_TRANSPORTS.map((t) => `"${t}:"`).join(", ");
            const problem = colon < 0 ? "it has no transport prefix" : `"${transport}" is not a known transport`;
            throw new AirgapError(
                "ERR_PARSE",
                `invalid image location "${s}": ${problem}; known transports are ${known} ` +
                    `(e.g. "docker://quay.io/org/app:1.0", "oci:/srv/layout:app-1.0")`,
            );
        }
    }
}

/** The canonical string of a location. */
export function formatImageLocation(location: ImageLocation): string {
    switch (location.transport) {
        case "docker":
            return `docker://${familiarString(location.reference)}`;
        case "oci":
        case "oci-archive":
            return formatOciLocation(location);
    }
}

function messageOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}
