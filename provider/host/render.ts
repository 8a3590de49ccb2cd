/**
 * Renderers: configuration in, file text out. Pure; validation happens before (validate.ts).
 */
import { stringify } from "smol-toml";
import type { AptSourceSpec, CaCertificateSpec, HostFile, HostMirrorSpec, RegistryMirrorSpec } from "./types";

const header = (what: string) =>
    `# Managed by pulumi-airgap (${what}). Local edits are reported as drift and reverted by \`pulumi up\`.\n`;

export const paths = {
    registriesDropIn: (name: string) => `etc/containers/registries.conf.d/${name}.conf`,
    caCertificate: (name: string) => `usr/local/share/ca-certificates/${name}.crt`,
    aptSources: (name: string) => `etc/apt/sources.list.d/${name}.sources`,
    aptKeyring: (name: string) => `etc/apt/keyrings/${name}.asc`,
};

/** A containers-registries.conf(5) v2 drop-in: one `[[registry]]` per source with its mirrors. */
export function renderRegistriesConf(name: string, registries: readonly RegistryMirrorSpec[]): string {
    const doc = {
        registry: registries.map((r) => ({
            prefix: r.source,
            location: r.source,
            "mirror-by-digest-only": r.mirrorByDigestOnly ?? true,
            mirror: r.mirrors.map((location) => ({ location, insecure: r.insecure ?? false })),
        })),
    };
    return `${header(name)}\n${stringify(doc)}\n`;
}

/** A deb822 `.sources` entry whose Signed-By names the keyring written beside it. */
export function renderAptSources(source: AptSourceSpec): string {
    const fields: [string, string][] = [
        ["Types", "deb"],
        ["URIs", source.uris.join(" ")],
        ["Suites", source.suites.join(" ")],
    ];
    if (source.components && source.components.length > 0) {
        fields.push(["Components", source.components.join(" ")]);
    }
    if (source.architectures && source.architectures.length > 0) {
        fields.push(["Architectures", source.architectures.join(" ")]);
    }
    fields.push(["Signed-By", `/${paths.aptKeyring(source.name)}`]);
    return `${header(source.name)}${fields.map(([k, v]) => `${k}: ${v}\n`).join("")}`;
}

/** Text ends with exactly one newline; CRLF becomes LF. */
function normalizeText(text: string): string {
    return `${text.replace(/\r\n/g, "\n").trim()}\n`;
}

export function renderCaCertificate(cert: CaCertificateSpec): string {
    return normalizeText(cert.pem);
}

export function renderAptKeyring(source: AptSourceSpec): string {
    return normalizeText(source.signedBy);
}

/** Every file of the configuration, in a stable order. */
export function renderHostFiles(spec: HostMirrorSpec): HostFile[] {
    const files: HostFile[] = [];
    if (spec.registries && spec.registries.length > 0) {
        files.push({
            path: paths.registriesDropIn(spec.name),
            content: renderRegistriesConf(spec.name, spec.registries),
            mode: 0o644,
        });
    }
    for (const cert of spec.caCertificates ?? []) {
        files.push({ path: paths.caCertificate(cert.name), content: renderCaCertificate(cert), mode: 0o644 });
    }
    for (const source of spec.apt ?? []) {
        files.push({ path: paths.aptKeyring(source.name), content: renderAptKeyring(source), mode: 0o644 });
        files.push({ path: paths.aptSources(source.name), content: renderAptSources(source), mode: 0o644 });
    }
    return files;
}
