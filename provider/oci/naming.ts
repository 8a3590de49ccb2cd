/**
 * Where images go and what they are called there: the `docker://`, `oci:` and `oci-archive:`
 * locations of ImageMirror, and the names images get at a destination (see mirror.ts).
 */

import { invalidArgument } from "../errors";
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
        const registry = s.slice("docker://".length).replace(/\/+$/, "");
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
