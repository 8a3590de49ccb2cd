/**
 * containerd registry host configuration: `etc/containerd/certs.d/<registry>/hosts.toml`
 * (containerd docs/hosts.md), read by the CRI plugin's `config_path` and `ctr --hosts-dir`.
 *
 * How a registries.conf mirror maps onto hosts.toml:
 * - `mirror-by-digest-only` → `capabilities = ["pull"]`: containerd asks a host without "resolve"
 *   only for references by digest; tags are resolved by `server`, the registry itself. Off →
 *   `["pull", "resolve"]`.
 * - a mirror with a namespace (`host:port/ns`) → `[host."https://host:port/v2/ns"]` with
 *   `override_path = true`: without it containerd would put `/v2` after the namespace
 *   (`/ns/v2/<repo>`), where a registry serving `ns/<repo>` has nothing.
 * - `insecure` → the mirror twice: HTTPS without verification (`skip_verify`), then plain HTTP.
 *   containerd before 1.7 never falls back from one scheme to the other by itself.
 */
import type { RegistryMirrorSpec } from "../types";
import { header, hostOf, namespaceOf, tomlString } from "./common";

export const containerdHostsDir = "etc/containerd/certs.d";

/** Directory name of a registry under certs.d (the registry host namespace). */
export const DEFAULT_NAMESPACE = "_default";

export function containerdHostsPath(registry: string): string {
    return `${containerdHostsDir}/${registry}/hosts.toml`;
}

/** The upstream `server` of a registry host namespace; Docker Hub's API lives on another host. */
export function containerdServer(registry: string): string {
    return registry === "docker.io" ? "https://registry-1.docker.io" : `https://${registry}`;
}

export interface ContainerdHostsOptions {
    /** Registry host namespace: a registry `host[:port]`, or "_default". */
    registry: string;
    mirrors: readonly string[];
    mirrorByDigestOnly: boolean;
    insecure: boolean;
    /** Absolute paths of CA files on the host, for verified HTTPS mirrors. */
    ca: readonly string[];
    /** Name in the header. */
    name: string;
}

function hostTable(url: string, lines: string[]): string {
    return `[host.${tomlString(url)}]\n${lines.map((l) => `  ${l}\n`).join("")}`;
}

/** One `hosts.toml`. `_default` gets no `server`: containerd then falls back to the image's own registry. */
export function renderContainerdHosts(o: ContainerdHostsOptions): string {
    const parts: string[] = [header(o.name)];
    if (o.registry !== DEFAULT_NAMESPACE) {
        parts.push(`server = ${tomlString(containerdServer(o.registry))}\n`);
    }
    const capabilities = `capabilities = ${o.mirrorByDigestOnly ? '["pull"]' : '["pull", "resolve"]'}`;
    for (const mirror of o.mirrors) {
        const ns = namespaceOf(mirror);
        const at = (scheme: string) => `${scheme}://${hostOf(mirror)}${ns ? `/v2/${ns}` : ""}`;
        const common = [capabilities, ...(ns ? ["override_path = true"] : [])];
        if (o.insecure) {
            parts.push(hostTable(at("https"), [...common, "skip_verify = true"]));
            parts.push(hostTable(at("http"), common));
        } else {
            const ca = o.ca.length > 0 ? [`ca = [${o.ca.map(tomlString).join(", ")}]`] : [];
            parts.push(hostTable(at("https"), [...common, ...ca]));
        }
    }
    return parts.join("\n");
}

/** The hosts.toml files for the `registries` entries (whole registries) and the catch-all. */
export function containerdFiles(
    name: string,
    registries: readonly RegistryMirrorSpec[],
    defaultMirror: { mirrors: readonly string[]; insecure: boolean } | undefined,
    ca: readonly string[],
): { path: string; content: string }[] {
    const files = registries.map((r) => ({
        path: containerdHostsPath(r.source),
        content: renderContainerdHosts({
            name,
            registry: r.source,
            mirrors: r.mirrors,
            mirrorByDigestOnly: r.mirrorByDigestOnly ?? true,
            insecure: r.insecure ?? false,
            ca,
        }),
    }));
    if (defaultMirror && defaultMirror.mirrors.length > 0) {
        files.push({
            path: containerdHostsPath(DEFAULT_NAMESPACE),
            content: renderContainerdHosts({
                name,
                registry: DEFAULT_NAMESPACE,
                mirrors: defaultMirror.mirrors,
                mirrorByDigestOnly: false,
                insecure: defaultMirror.insecure,
                ca,
            }),
        });
    }
    return files;
}
