/**
 * Docker image references: parsing, normalisation and the familiar (short) form, following the
 * grammar of the distribution project's `reference` package:
 *
 *     reference        := name [ ":" tag ] [ "@" digest ]
 *     name             := [ domain "/" ] path
 *     domain           := host [ ":" port-number ]
 *     host             := domain-name | "[" IPv6address "]"
 *     domain-name      := domain-component ( "." domain-component )*
 *     domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *     port-number      := /[0-9]+/
 *     path             := path-component ( "/" path-component )*
 *     path-component   := alpha-numeric ( separator alpha-numeric )*
 *     alpha-numeric    := /[a-z0-9]+/
 *     separator        := /[_.]|__|[-]+/
 *     tag              := /[\w][\w.-]{0,127}/
 *     digest           := "sha256:" 64 lower-case hex | "sha512:" 128 lower-case hex
 *
 * The first component of a name is a domain only when it contains "." or ":", is "localhost", or
 * has an upper-case letter; otherwise the name is on Docker Hub (`docker.io`), and a single-component
 * Hub name gets the `library/` namespace. `index.docker.io` is the same registry as `docker.io`.
 * The fully qualified name (`domain/path`) is at most 255 characters.
 */

import { AirgapError, invalidArgument } from "../errors";
import { isDigest } from "./digest";

/** A normalised reference: `domain` and `path` are always filled in. Plain data, safe to serialize. */
export interface DockerReference {
    /** Registry host and optional port, e.g. "docker.io", "quay.io", "localhost:5000". */
    readonly domain: string;
    /** Repository path within the registry, e.g. "library/nginx", "org/app". */
    readonly path: string;
    readonly tag?: string;
    /** `sha256:...` or `sha512:...`. When both tag and digest are present, the digest identifies the image. */
    readonly digest?: string;
}

export const DOCKER_HUB_DOMAIN = "docker.io";
export const NAME_TOTAL_LENGTH_MAX = 255;
const LEGACY_HUB_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = "\\[[a-fA-F0-9:]+\\]";
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[_.]|__|[-]+)[a-z0-9]+)*";
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;

const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH}$`);
const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

function parseError(s: string, problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `invalid image reference "${s}": ${problem}`);
}

/**
 * Parses a reference such as `nginx`, `nginx:1.27`, `quay.io/org/app@sha256:...` or
 * `localhost:5000/app:v1@sha256:...` into its normalised form. Throws ERR_PARSE naming the
 * string and the rule it breaks.
 */
export function parseDockerReference(s: string): DockerReference {
    if (s === "") {
        throw parseError(s, "it is empty");
    }
    if (IDENTIFIER_RE.test(s)) {
        throw parseError(s, "a repository name cannot be a 64-character hex string (an image ID); use a name");
    }
    let rest = s;
    let digest: string | undefined;
    const at = rest.indexOf("@");
    if (at >= 0) {
        digest = rest.slice(at + 1);
        rest = rest.slice(0, at);
        if (!isDigest(digest)) {
            throw parseError(s, `"${digest}" is not a sha256 or sha512 digest with lower-case hex of the right length`);
        }
    }
    let tag: string | undefined;
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
        tag = rest.slice(colon + 1);
        rest = rest.slice(0, colon);
        if (!TAG_RE.test(tag)) {
            throw parseError(
                s,
                `tag "${tag}" must be 1 to 128 characters of letters, digits, "_", "." or "-", not starting with "." or "-"`,
            );
        }
    }
    const { domain, path } = splitName(s, rest);
    return withOptional({ domain, path }, tag, digest);
}

function splitName(s: string, name: string): { domain: string; path: string } {
    if (name === "") {
        throw parseError(s, "the repository name is empty");
    }
    const slash = name.indexOf("/");
    const first = slash < 0 ? "" : name.slice(0, slash);
    const isDomain =
        slash >= 0 &&
        (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first);
    let domain = isDomain ? first : DOCKER_HUB_DOMAIN;
    let path = isDomain ? name.slice(slash + 1) : name;
    if (!DOMAIN_RE.test(domain)) {
        throw parseError(s, `"${domain}" is not a valid registry host[:port]`);
    }
    if (domain === LEGACY_HUB_DOMAIN) {
        domain = DOCKER_HUB_DOMAIN;
    }
    if (path.toLowerCase() !== path) {
        throw parseError(s, `repository name "${path}" must be lower-case`);
    }
    if (!PATH_RE.test(path)) {
        throw parseError(
            s,
            `repository name "${path}" must be "/"-separated components of a-z and 0-9 joined by ".", "_", "__" or "-"`,
        );
    }
    if (domain === DOCKER_HUB_DOMAIN && !path.includes("/")) {
        path = OFFICIAL_REPO_PREFIX + path;
    }
    const full = `${domain}/${path}`;
    if (full.length > NAME_TOTAL_LENGTH_MAX) {
        throw parseError(s, `the repository name "${full}" is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
    }
    return { domain, path };
}

function withOptional(
    base: { domain: string; path: string },
    tag: string | undefined,
    digest: string | undefined,
): DockerReference {
    const ref: { domain: string; path: string; tag?: string; digest?: string } = { ...base };
    if (tag !== undefined) {
        ref.tag = tag;
    }
    if (digest !== undefined) {
        ref.digest = digest;
    }
    return ref;
}

function suffix(ref: DockerReference): string {
    return (ref.tag === undefined ? "" : `:${ref.tag}`) + (ref.digest === undefined ? "" : `@${ref.digest}`);
}

/** `domain/path`, e.g. "docker.io/library/nginx". */
export function fullName(ref: DockerReference): string {
    return `${ref.domain}/${ref.path}`;
}

/** The fully qualified string, e.g. "docker.io/library/nginx:1.27@sha256:...". */
export function fullString(ref: DockerReference): string {
    return fullName(ref) + suffix(ref);
}

/** The name as people write it: "nginx", "user/app", "quay.io/org/app". */
export function familiarName(ref: DockerReference): string {
    if (ref.domain !== DOCKER_HUB_DOMAIN) {
        return fullName(ref);
    }
    if (ref.path.startsWith(OFFICIAL_REPO_PREFIX) && !ref.path.slice(OFFICIAL_REPO_PREFIX.length).includes("/")) {
        return ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    }
    return ref.path;
}

/** The familiar string, e.g. "nginx:1.27"; `parseDockerReference` of it gives back an equal value. */
export function familiarString(ref: DockerReference): string {
    return familiarName(ref) + suffix(ref);
}

/** The same repository with `tag` (replacing any tag; the digest, if any, is kept). */
export function withTag(ref: DockerReference, tag: string): DockerReference {
    if (!TAG_RE.test(tag)) {
        throw invalidArgument(
            "tag",
            `"${tag}" is not a valid tag (1 to 128 of [A-Za-z0-9_.-], not starting with . or -)`,
        );
    }
    return withOptional({ domain: ref.domain, path: ref.path }, tag, ref.digest);
}

/** The same repository pinned to `digest` (the tag, if any, is kept for information). */
export function withDigest(ref: DockerReference, digest: string): DockerReference {
    if (!isDigest(digest)) {
        throw invalidArgument("digest", `"${digest}" is not a sha256 or sha512 digest`);
    }
    return withOptional({ domain: ref.domain, path: ref.path }, ref.tag, digest);
}

/** The repository only, without tag or digest. */
export function nameOnly(ref: DockerReference): DockerReference {
    return { domain: ref.domain, path: ref.path };
}

/**
 * How a mirror names a source repository:
 * - "keep-registry": the source registry becomes the first path component
 *   (`quay.io/org/app` → `mirror:5000/quay.io/org/app`), so repositories of different registries
 *   never collide;
 * - "strip-registry": only the path is kept (`quay.io/org/app` → `mirror:5000/org/app`).
 */
export type RegistryMode = "keep-registry" | "strip-registry";

/**
 * The reference `ref` has in a mirror at `registry` (`host[:port]`, optionally followed by a
 * `/namespace` prefix, e.g. "mirror:5000/mirrors"). Tag and digest are kept.
 * In "keep-registry" mode a source registry with a port or an IPv6 address cannot become a path
 * component; that is an ERR_INVALID_ARGUMENT suggesting "strip-registry".
 */
export function withRegistry(ref: DockerReference, registry: string, mode: RegistryMode): DockerReference {
    if (mode !== "keep-registry" && mode !== "strip-registry") {
        throw invalidArgument("mode", `"${String(mode)}" is not "keep-registry" or "strip-registry"`);
    }
    const slash = registry.indexOf("/");
    const host = slash < 0 ? registry : registry.slice(0, slash);
    const prefix = slash < 0 ? "" : registry.slice(slash + 1);
    if (!DOMAIN_RE.test(host)) {
        throw invalidArgument("registry", `"${registry}" must start with a registry host[:port]`);
    }
    if (slash >= 0 && !PATH_RE.test(prefix)) {
        throw invalidArgument("registry", `namespace "${prefix}" of "${registry}" is not a valid repository path`);
    }
    const parts: string[] = [];
    if (prefix !== "") {
        parts.push(prefix);
    }
    if (mode === "keep-registry") {
        const component = ref.domain.toLowerCase();
        if (!PATH_COMPONENT_RE.test(component)) {
            throw invalidArgument(
                "mode",
                `registry "${ref.domain}" of "${familiarString(ref)}" cannot be kept as a repository path component ` +
                    `(ports and IPv6 addresses are not allowed there); use "strip-registry"`,
            );
        }
        parts.push(component);
    }
    parts.push(ref.path);
    const domain = host === LEGACY_HUB_DOMAIN ? DOCKER_HUB_DOMAIN : host;
    const path = parts.join("/");
    const full = `${domain}/${path}`;
    if (full.length > NAME_TOTAL_LENGTH_MAX) {
        throw invalidArgument(
            "registry",
            `mirror repository "${full}" is longer than ${NAME_TOTAL_LENGTH_MAX} characters`,
        );
    }
    return withOptional({ domain, path }, ref.tag, ref.digest);
}
