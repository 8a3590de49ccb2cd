/**
 * Where images go and what they are called there: the `docker://`, `oci:` and `oci-archive:`
 * locations of ImageMirror, and the names images get at a destination (see mirror.ts).
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { invalidArgument } from "../errors";
import { placeOf } from "../store/place";
import { parseDigest } from "./digest";
import {
    type DockerReference,
    fullName,
    nameOnly,
    parseDockerReference,
    type RegistryMode,
    withRegistry,
    withTag,
} from "./reference";

/** Where images go or come from. */
export type MirrorTarget =
    | { readonly kind: "registry"; readonly registry: string }
    | { readonly kind: "oci"; readonly path: string }
    | { readonly kind: "oci-archive"; readonly path: string };

export const DEFAULT_SOURCE = "docker://";

/** `host[:port]` as `tls.insecureRegistries` lists it. */
export const registryHostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/;
const TAG_MAX = 128;

/** Parses `destination`: `docker://host[:port][/namespace]`, `oci:/path` or `oci-archive:/path`. */
export function parseMirrorTarget(s: string, argument: string): MirrorTarget {
    if (typeof s !== "string") {
        throw invalidArgument(argument, `must be a string such as "docker://mirror.local:5000", got ${typeof s}`);
    }
    if (s.startsWith("docker://")) {
        // One spelling: host lower-case without the default port, no empty or trailing segments.
        const registry = placeOfDestination(s).slice("docker://".length);
        // withRegistry validates host[:port] and the namespace.
        try {
            withRegistry({ domain: "example.invalid", path: "x" }, registry, "strip-registry");
        } catch (cause) {
            throw invalidArgument(
                argument,
                `"${s}" must be "docker://host[:port][/namespace]", e.g. "docker://mirror.local:5000"`,
                cause,
            );
        }
        return { kind: "registry", registry };
    }
    for (const kind of ["oci", "oci-archive"] as const) {
        if (s.startsWith(`${kind}:`)) {
            const p = s.slice(kind.length + 1);
            if (p === "" || p.includes(":")) {
                throw invalidArgument(
                    argument,
                    `"${s}" must be "${kind}:/path" without a reference (images are named after their source)`,
                );
            }
            return { kind, path: p };
        }
    }
    throw invalidArgument(
        argument,
        `"${s}" has an unknown transport; use "docker://host[:port][/namespace]", "oci:/path" or "oci-archive:/path/file.tar"`,
    );
}

/** The port a registry is reached on when none is written (HTTPS). */
const DEFAULT_REGISTRY_PORT = ":443";
const HUB_ALIASES = ["index.docker.io"];

/**
 * A registry `host[:port]` spelled one way: lower-case, without the default port ":443", the
 * Docker Hub aliases as "docker.io". Used for destinations and for `tls.insecureRegistries`.
 */
export function registryHostKey(host: string): string {
    let h = host.toLowerCase();
    if (h.endsWith(DEFAULT_REGISTRY_PORT)) {
        h = h.slice(0, -DEFAULT_REGISTRY_PORT.length);
    }
    return HUB_ALIASES.includes(h) ? "docker.io" : h;
}

/** A file or directory path as a place: absolute, resolved through the symbolic links that exist. */
function placeOfPath(p: string): string {
    const resolved = path.resolve(p);
    if (fs.existsSync(resolved)) {
        return placeOf(resolved);
    }
    const parent = path.dirname(resolved);
    return parent === resolved ? resolved : path.join(placeOfPath(parent), path.basename(resolved));
}

/**
 * A destination (or a store of `PushedImage.destination`: `docker://host/repository`, `oci:/path`,
 * `oci-archive:/path`) spelled one way, so that two spellings of one place never look like two
 * places: the registry host as `registryHostKey`, the namespace or repository without empty
 * segments or a trailing slash; a layout or archive path absolute, without "." / ".." or doubled
 * slashes, symbolic links resolved as far as the path exists. Anything else is returned as it is.
 */
export function placeOfDestination(s: string): string {
    if (typeof s !== "string") {
        return s;
    }
    if (s.startsWith("docker://")) {
        const [host = "", ...rest] = s.slice("docker://".length).split("/");
        const segments = rest.filter((x) => x !== "");
        return `docker://${[registryHostKey(host), ...segments].join("/")}`;
    }
    for (const kind of ["oci-archive", "oci"] as const) {
        if (s.startsWith(`${kind}:`)) {
            const p = s.slice(kind.length + 1);
            return p === "" || p.includes(":") ? s : `${kind}:${placeOfPath(p)}`;
        }
    }
    return s;
}

/** Parses `source`: "docker://" (the default), `oci:/path` or `oci-archive:/path`. */
export function parseMirrorSource(
    s: string | undefined,
): { readonly kind: "oci" | "oci-archive"; readonly path: string } | undefined {
    if (s === undefined || s === DEFAULT_SOURCE) {
        return undefined;
    }
    const target = parseMirrorTarget(s, "source");
    if (target.kind === "registry") {
        throw invalidArgument(
            "source",
            `"${s}": images come from their own registries with "docker://"; give no host (or use oci:/oci-archive:)`,
        );
    }
    return target;
}

/** The reference a lock key names ("quay.io/org/app:1.2" or "docker://quay.io/org/app:1.2"). */
export function sourceReference(key: string): DockerReference {
    return parseDockerReference(key.startsWith("docker://") ? key.slice("docker://".length) : key);
}

/** The tag an image gets at the destination: the source tag, else one made from the digest, else "latest". */
export function mirrorTag(ref: DockerReference): string {
    if (ref.tag !== undefined) {
        return ref.tag;
    }
    if (ref.digest !== undefined) {
        return ref.digest.replace(":", "-").slice(0, TAG_MAX);
    }
    return "latest";
}

/** The reference name of an image in a layout or archive: "quay.io/org/app:1.2". */
export function layoutRefName(ref: DockerReference): string {
    return `${fullName(ref)}:${mirrorTag(ref)}`;
}

/** The image's repository and tag in a mirror registry. */
export function mirrorReference(ref: DockerReference, registry: string, mode: RegistryMode): DockerReference {
    return withTag(withRegistry(nameOnly(ref), registry, mode), mirrorTag(ref));
}

/** True when `s` is a digest the lock may hold. */
export function isLockDigest(s: unknown): boolean {
    if (typeof s !== "string") return false;
    try {
        parseDigest(s);
        return true;
    } catch {
        return false;
    }
}
