/**
 * Registry authentication inputs: `WWW-Authenticate` challenges (RFC 7235, with the Bearer
 * parameters of the distribution token protocol) and credentials from a Docker `config.json`,
 * a containers `auth.json` or a Kubernetes pull secret (`.dockerconfigjson`), all of which hold
 * an `auths` object keyed by registry.
 *
 * Error messages name registries and keys, never secrets.
 */

import { AirgapError } from "../errors";
import { DOCKER_HUB_DOMAIN } from "./reference";

/** One challenge of a `WWW-Authenticate` header. Parameter names are lower-cased. */
export interface AuthChallenge {
    /** Lower-cased scheme: "bearer", "basic", or whatever the server sent. */
    readonly scheme: string;
    readonly params: Readonly<Record<string, string>>;
}

/** A Bearer challenge with the token-service parameters pulled out. */
export interface BearerChallenge {
    readonly realm: string;
    readonly service?: string;
    /** Space-separated scopes, e.g. "repository:library/nginx:pull". */
    readonly scope?: string;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses a `WWW-Authenticate` header value into its challenges, in order, e.g.
 * `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:pull"`.
 * Quoted values may contain commas and backslash escapes. ERR_PARSE naming the header on malformed input.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
    const fail = (problem: string): AirgapError =>
        new AirgapError("ERR_PARSE", `invalid WWW-Authenticate header ${JSON.stringify(header)}: ${problem}`);
    const challenges: { scheme: string; params: Record<string, string> }[] = [];
    let i = 0;
    const skipSpace = (): void => {
        while (i < header.length && (header[i] === " " || header[i] === "\t")) {
            i++;
        }
    };
    const token = (): string | undefined => {
        const m = TOKEN_RE.exec(header.slice(i));
        if (m === null) {
            return undefined;
        }
        i += m[0].length;
        return m[0];
    };
    const quoted = (): string => {
        // header[i] is the opening quote.
        i++;
        let out = "";
        while (i < header.length) {
            const c = header[i]!;
            if (c === "\\" && i + 1 < header.length) {
                out += header[i + 1];
                i += 2;
            } else if (c === '"') {
                i++;
                return out;
            } else {
                out += c;
                i++;
            }
        }
        throw fail("unterminated quoted string");
    };
    let current: { scheme: string; params: Record<string, string> } | undefined;
    while (true) {
        skipSpace();
        while (header[i] === ",") {
            i++;
            skipSpace();
        }
        if (i >= header.length) {
            break;
        }
        const word = token();
        if (word === undefined) {
            throw fail(`unexpected character ${JSON.stringify(header[i])} at ${i}`);
        }
        skipSpace();
        if (header[i] === "=" && current !== undefined && !/^=+\s*(,|$)/.test(header.slice(i))) {
            // An auth-param of the current challenge.
            i++;
            skipSpace();
            let value: string | undefined;
            if (header[i] === '"') {
                value = quoted();
            } else {
                // Strictly a token; servers also send unquoted URLs, which are accepted up to "," or space.
                const m = /^[^\s,"]+/.exec(header.slice(i));
                if (m === null) {
                    throw fail(`missing value for parameter "${word}"`);
                }
                value = m[0];
                i += value.length;
            }
            current.params[word.toLowerCase()] = value;
            skipSpace();
            if (i < header.length && header[i] !== ",") {
                throw fail(`expected "," after parameter "${word}"`);
            }
            continue;
        }
        if (header[i] === "=" && current === undefined) {
            throw fail(`parameter "${word}" before any scheme`);
        }
        // A new challenge: `scheme` followed by auth-params or a token68.
        current = { scheme: word.toLowerCase(), params: {} };
        challenges.push(current);
        skipSpace();
        const rest = header.slice(i);
        const token68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/.exec(rest);
        if (token68 !== null && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=[^=]/.test(rest)) {
            current.params["token68"] = token68[0];
            i += token68[0].length;
        }
    }
    return challenges;
}

/** The Bearer challenge of a header, or undefined when there is none. ERR_PARSE when it lacks a realm. */
export function bearerChallenge(challenges: readonly AuthChallenge[]): BearerChallenge | undefined {
    const c = challenges.find((x) => x.scheme === "bearer");
    if (c === undefined) {
        return undefined;
    }
    const realm = c.params["realm"];
    if (realm === undefined || realm === "") {
        throw new AirgapError("ERR_PARSE", `Bearer challenge without a realm: ${JSON.stringify(c.params)}`);
    }
    const out: { realm: string; service?: string; scope?: string } = { realm };
    if (c.params["service"] !== undefined) {
        out.service = c.params["service"];
    }
    if (c.params["scope"] !== undefined) {
        out.scope = c.params["scope"];
    }
    return out;
}

/** Credentials for one registry. */
export type RegistryCredentials =
    | { readonly kind: "basic"; readonly username: string; readonly password: string }
    /** An OAuth2 refresh token (`identitytoken`), exchanged at the token realm. */
    | { readonly kind: "identity-token"; readonly username?: string; readonly token: string };

/** The `auths` of a Docker config.json / auth.json / pull secret, as parsed. */
export interface DockerConfig {
    readonly auths: Readonly<Record<string, DockerConfigEntry>>;
}

export interface DockerConfigEntry {
    readonly auth?: string;
    readonly username?: string;
    readonly password?: string;
    readonly identitytoken?: string;
}

/**
 * Parses a Docker `config.json`, containers `auth.json` or pull-secret `.dockerconfigjson` text.
 * `where` (a file name or "pull secret ns/name") names the input in errors. Other top-level
 * fields (credHelpers, proxies, ...) are ignored.
 */
export function parseDockerConfig(text: string, where = "docker config"): DockerConfig {
    let doc: unknown;
    try {
        doc = JSON.parse(text);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${where}: not valid JSON`, { cause });
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        throw new AirgapError("ERR_PARSE", `${where}: expected a JSON object`);
    }
    const auths = (doc as Record<string, unknown>)["auths"] ?? {};
    if (typeof auths !== "object" || auths === null || Array.isArray(auths)) {
        throw new AirgapError("ERR_PARSE", `${where}: "auths" must be an object`);
    }
    const out: Record<string, DockerConfigEntry> = {};
    for (const [key, value] of Object.entries(auths)) {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
            throw new AirgapError("ERR_PARSE", `${where}: auths["${key}"] must be an object`);
        }
        const entry: Record<string, string> = {};
        for (const field of ["auth", "username", "password", "identitytoken"] as const) {
            const v = (value as Record<string, unknown>)[field];
            if (v !== undefined && v !== null) {
                if (typeof v !== "string") {
                    throw new AirgapError("ERR_PARSE", `${where}: auths["${key}"].${field} must be a string`);
                }
                entry[field] = v;
            }
        }
        out[key] = entry;
    }
    return { auths: out };
}

const DOCKER_HUB_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/**
 * The host[:port][/path] a config key stands for: scheme and trailing slashes removed, and the
 * legacy Hub key "https://index.docker.io/v1/" mapped to "docker.io". Keys with a scheme (the Docker
 * CLI's form) are registry-wide, so their path is dropped; keys without one may name a namespace
 * or repository (the containers auth.json form).
 */
export function normalizeAuthKey(key: string): string {
    let k = key.trim();
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(k);
    if (scheme !== null) {
        k = k.slice(scheme[0].length);
        const slash = k.indexOf("/");
        if (slash >= 0) {
            k = k.slice(0, slash);
        }
    }
    k = k.replace(/\/+$/, "");
    const slash = k.indexOf("/");
    const host = (slash < 0 ? k : k.slice(0, slash)).toLowerCase();
    const rest = slash < 0 ? "" : k.slice(slash);
    const canonicalHost = DOCKER_HUB_ALIASES.includes(host) ? DOCKER_HUB_DOMAIN : host;
    // "index.docker.io/v1" without a scheme is the same legacy Hub key.
    if (canonicalHost === DOCKER_HUB_DOMAIN && /^\/v[12]$/.test(rest)) {
        return canonicalHost;
    }
    return canonicalHost + rest;
}

/**
 * The credentials `config` holds for repository `repository` ("quay.io/org/app", or just a
 * registry "quay.io"; "docker.io" and its aliases are one registry). The most specific key wins:
 * "quay.io/org/app", then "quay.io/org", then "quay.io". ERR_PARSE, naming the key, when the entry
 * is malformed (an `auth` that is not base64 of "user:password"). Undefined when nothing matches.
 */
export function findCredentials(config: DockerConfig, repository: string): RegistryCredentials | undefined {
    const normalized = new Map<string, string>();
    for (const key of Object.keys(config.auths)) {
        const n = normalizeAuthKey(key);
        // An exact key without a scheme wins over a legacy URL key for the same host.
        if (!normalized.has(n) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(key)) {
            normalized.set(n, key);
        }
    }
    let candidate = normalizeAuthKey(repository);
    while (true) {
        const key = normalized.get(candidate);
        if (key !== undefined) {
            return credentialsOf(config.auths[key]!, key);
        }
        const slash = candidate.lastIndexOf("/");
        if (slash < 0) {
            return undefined;
        }
        candidate = candidate.slice(0, slash);
    }
}

function credentialsOf(entry: DockerConfigEntry, key: string): RegistryCredentials | undefined {
    let username = entry.username;
    let password = entry.password;
    if (entry.auth !== undefined && entry.auth !== "") {
        const b64 = entry.auth.trim();
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) {
            throw new AirgapError("ERR_PARSE", `auths["${key}"].auth is not base64`);
        }
        const decoded = Buffer.from(b64, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon < 0) {
            throw new AirgapError("ERR_PARSE", `auths["${key}"].auth does not decode to "username:password"`);
        }
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
    }
    if (entry.identitytoken !== undefined && entry.identitytoken !== "") {
        return username === undefined || username === ""
            ? { kind: "identity-token", token: entry.identitytoken }
            : { kind: "identity-token", username, token: entry.identitytoken };
    }
    if (username === undefined || username === "") {
        return undefined;
    }
    return { kind: "basic", username, password: password ?? "" };
}

/** The `Authorization` header value for Basic credentials. */
export function basicAuthorization(username: string, password: string): string {
    return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}
