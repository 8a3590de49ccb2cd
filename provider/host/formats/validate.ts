/**
 * Validation of the runtime-format options of HostMirrorConfig (caTrust, containerd, docker,
 * aptDisableOtherSources, pip), and of the `registries` entries as those formats can express them.
 */
import type { Problem } from "../../errors";
import type { HostMirrorSpec } from "../types";
import { namespaceOf } from "./common";

const hostLabel = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
const hostPort = new RegExp(`^(?:${hostLabel}(?:\\.${hostLabel})*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?$`);

function checkBoolean(problems: Problem[], argument: string, value: unknown): void {
    if (value !== undefined && typeof value !== "boolean") {
        problems.push({ argument, problem: "must be true or false" });
    }
}

/**
 * Problems with the format options, each naming its argument. `checkLocation` is the check of
 * registry locations (`host[:port][/namespace]`) the other arguments use.
 */
export function formatProblems(
    spec: HostMirrorSpec,
    checkLocation: (problems: Problem[], argument: string, value: unknown) => void,
): Problem[] {
    const problems: Problem[] = [];
    const registries = Array.isArray(spec.registries) ? spec.registries : [];

    if (spec.caTrust !== undefined && spec.caTrust !== "debian" && spec.caTrust !== "rhel") {
        problems.push({
            argument: "caTrust",
            problem: `"${String(spec.caTrust)}" is not "debian" (usr/local/share/ca-certificates) or "rhel" (etc/pki/ca-trust/source/anchors)`,
        });
    }

    const containerd = spec.containerd;
    if (containerd !== undefined && typeof containerd !== "boolean") {
        if (containerd === null || typeof containerd !== "object" || Array.isArray(containerd)) {
            problems.push({ argument: "containerd", problem: "must be true, false or { defaultMirror?, insecure? }" });
        } else {
            if (containerd.defaultMirror !== undefined) {
                if (!Array.isArray(containerd.defaultMirror) || containerd.defaultMirror.length === 0) {
                    problems.push({
                        argument: "containerd.defaultMirror",
                        problem: "must list at least one mirror location (or be left out)",
                    });
                } else {
                    containerd.defaultMirror.forEach((m, j) => {
                        checkLocation(problems, `containerd.defaultMirror[${j}]`, m);
                    });
                }
            }
            checkBoolean(problems, "containerd.insecure", containerd.insecure);
        }
    }
    if (containerd) {
        const seen = new Map<string, number>();
        registries.forEach((r, i) => {
            const source = r?.source;
            if (typeof source !== "string") {
                return;
            }
            if (namespaceOf(source) !== "" || source.startsWith("*.")) {
                problems.push({
                    argument: `registries[${i}].source`,
                    problem: `"${source}" is not a whole registry: containerd's hosts.toml configures registry hosts, not namespaces or wildcards; give the registry host (or turn containerd off)`,
                });
            } else if (seen.has(source)) {
                problems.push({
                    argument: `registries[${i}].source`,
                    problem: `"${source}" is also registries[${seen.get(source)}].source: containerd has one hosts.toml per registry; list all its mirrors in one entry`,
                });
            } else {
                seen.set(source, i);
            }
        });
    }

    checkBoolean(problems, "docker", spec.docker);
    if (spec.docker === true) {
        registries.forEach((r, i) => {
            if (r?.source !== "docker.io" || !Array.isArray(r.mirrors)) {
                return;
            }
            r.mirrors.forEach((m, j) => {
                if (typeof m === "string" && namespaceOf(m) !== "") {
                    problems.push({
                        argument: `registries[${i}].mirrors[${j}]`,
                        problem: `"${m}" has a namespace: Docker's registry-mirrors serve Docker Hub repositories at the mirror's root (host[:port] only); mirror Docker Hub at a registry's root (an ImageMirror: repositoryPath "strip-registry", a destination without a namespace), or turn docker off`,
                    });
                }
            });
        });
    }

    checkBoolean(problems, "aptDisableOtherSources", spec.aptDisableOtherSources);

    if (spec.pip !== undefined) {
        const pip = spec.pip;
        if (pip === null || typeof pip !== "object") {
            problems.push({ argument: "pip", problem: "must be { indexUrl, trustedHost? }" });
        } else {
            let url: URL | undefined;
            try {
                url = typeof pip.indexUrl === "string" ? new URL(pip.indexUrl) : undefined;
            } catch {
                url = undefined;
            }
            if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || /\s/.test(pip.indexUrl)) {
                problems.push({
                    argument: "pip.indexUrl",
                    problem: `"${String(pip.indexUrl)}" is not an http(s) URL such as http://mirror.example/pypi/simple/`,
                });
            }
            if (
                pip.trustedHost !== undefined &&
                (typeof pip.trustedHost !== "string" || !hostPort.test(pip.trustedHost))
            ) {
                problems.push({
                    argument: "pip.trustedHost",
                    problem: `"${String(pip.trustedHost)}" is not a host[:port] (no scheme, no path)`,
                });
            }
        }
    }
    return problems;
}
