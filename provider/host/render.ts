/**
 * Renderers: configuration in, file text out. Pure; validation happens before (validate.ts).
 */
import { stringify } from "smol-toml";
import { aptSourcesDir, disableAptSourceFile, isManagedText, otherAptSourceFiles } from "./formats/apt";
import { header } from "./formats/common";
import { containerdFiles } from "./formats/containerd";
import { dockerDaemonJson, dockerSettings, renderDaemonJson } from "./formats/docker";
import { pipConf, renderPipConf } from "./formats/pip";
import type { AptSourceSpec, CaCertificateSpec, HostFile, HostMirrorSpec, RegistryMirrorSpec } from "./types";

export const paths = {
    registriesDropIn: (name: string) => `etc/containers/registries.conf.d/${name}.conf`,
    caCertificate: (name: string) => `usr/local/share/ca-certificates/${name}.crt`,
    rhelCaCertificate: (name: string) => `etc/pki/ca-trust/source/anchors/${name}.crt`,
    dockerDaemonJson,
    pipConf,
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

function caPath(spec: HostMirrorSpec, name: string): string {
    return spec.caTrust === "rhel" ? paths.rhelCaCertificate(name) : paths.caCertificate(name);
}

/**
 * Directories whose listing the applier passes to `derivedPaths` and `renderHostFiles` as
 * `current["<dir>/"]`: the names of the entries, one a line (undefined when the directory is absent).
 */
export function listDirs(spec: HostMirrorSpec): string[] {
    return spec.aptDisableOtherSources ? [aptSourcesDir] : [];
}

/**
 * The files whose new text depends on their text on the host: the applier reads each (undefined
 * when absent) into `current` before `renderHostFiles`. `listing` holds the `listDirs` entries
 * (`current["<dir>/"]`); without it, the files of those directories are not known yet and are not listed.
 */
export function derivedPaths(spec: HostMirrorSpec, listing: Record<string, string | undefined> = {}): string[] {
    const derived: string[] = [];
    if (spec.docker) {
        derived.push(dockerDaemonJson);
    }
    if (spec.aptDisableOtherSources) {
        const own = (spec.apt ?? []).map((s) => paths.aptSources(s.name));
        derived.push(...otherAptSourceFiles(listing[`${aptSourcesDir}/`], own));
    }
    return derived;
}

/**
 * Every file of the configuration, in a stable order. `current` holds the host's text of the
 * `derivedPaths` (undefined: absent) and the `listDirs` listings; without it, daemon.json is
 * rendered as a new file and no other APT source is known.
 *
 * Throws ERR_PARSE naming the path when a current file cannot be merged (a daemon.json that is not
 * JSON): nothing is to be written then.
 */
export function renderHostFiles(spec: HostMirrorSpec, current: Record<string, string | undefined> = {}): HostFile[] {
    const files: HostFile[] = [];
    if (spec.registries && spec.registries.length > 0) {
        files.push({
            path: paths.registriesDropIn(spec.name),
            content: renderRegistriesConf(spec.name, spec.registries),
            mode: 0o644,
        });
    }
    for (const cert of spec.caCertificates ?? []) {
        files.push({ path: caPath(spec, cert.name), content: renderCaCertificate(cert), mode: 0o644 });
    }
    for (const source of spec.apt ?? []) {
        files.push({ path: paths.aptKeyring(source.name), content: renderAptKeyring(source), mode: 0o644 });
        files.push({ path: paths.aptSources(source.name), content: renderAptSources(source), mode: 0o644 });
    }
    if (spec.containerd) {
        const options = typeof spec.containerd === "object" ? spec.containerd : {};
        const ca = (spec.caCertificates ?? []).map((c) => `/${caPath(spec, c.name)}`);
        const defaultMirror = options.defaultMirror
            ? { mirrors: options.defaultMirror, insecure: options.insecure ?? false }
            : undefined;
        for (const f of containerdFiles(spec.name, spec.registries ?? [], defaultMirror, ca)) {
            files.push({ ...f, mode: 0o644 });
        }
    }
    if (spec.docker) {
        const content = renderDaemonJson(current[dockerDaemonJson], dockerSettings(spec.registries ?? []));
        files.push({ path: dockerDaemonJson, content, mode: 0o644 });
    }
    if (spec.aptDisableOtherSources) {
        for (const path of derivedPaths(spec, current).filter((p) => p !== dockerDaemonJson)) {
            const text = current[path];
            if (text === undefined || isManagedText(text)) {
                continue;
            }
            files.push({ path, content: disableAptSourceFile(path, text), mode: 0o644 });
        }
    }
    if (spec.pip) {
        files.push({ path: pipConf, content: renderPipConf(spec.name, spec.pip), mode: 0o644 });
    }
    return files;
}
