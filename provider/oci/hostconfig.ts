/**
 * The host configuration that points clients at an ImageMirror's registry destination:
 * HostMirrorConfig `registries` entries, registries.conf v2 and OpenShift ImageDigestMirrorSet.
 *
 * The registries.conf text comes from the host renderer (host/render.ts), so that the file an
 * ImageMirror outputs and the one HostMirrorConfig writes are one format from one definition.
 */

import { stringify as stringifyYaml } from "yaml";
import { renderRegistriesConf } from "../host/render";
import type { RegistryMirrorSpec } from "../host/types";
import { fullName, withRegistry } from "./reference";
import type { ImageMirrorSpec, ImageMirrorState } from "./mirror_types";
import { parseMirrorTarget, registryHostKey, sourceReference } from "./naming";

/** One `{source, mirrors}` entry per source registry, for registry destinations. */
export function mirrorRegistries(
    spec: Pick<ImageMirrorSpec, "images" | "destination" | "repositoryPath" | "tls">,
): RegistryMirrorSpec[] {
    const target = parseMirrorTarget(spec.destination, "destination");
    if (target.kind !== "registry") {
        return [];
    }
    const mode = spec.repositoryPath ?? "keep-registry";
    const host = registryHostKey(target.registry.split("/")[0]!);
    const insecure = (spec.tls?.insecureRegistries ?? []).some((r) => registryHostKey(r) === host);
    const bySource = new Map<string, string>();
    for (const key of Object.keys(spec.images ?? {})) {
        const ref = sourceReference(key);
        const mirror = withRegistry({ domain: ref.domain, path: "x" }, target.registry, mode);
        // The mirror prefix standing for the source registry: the mirror repository without the path.
        bySource.set(ref.domain, fullName(mirror).slice(0, -"/x".length));
    }
    return [...bySource.keys()].sort().map((source) => ({
        source,
        mirrors: [bySource.get(source)!],
        mirrorByDigestOnly: true,
        ...(insecure ? { insecure: true } : {}),
    }));
}

/** An OpenShift `ImageDigestMirrorSet` for the entries. */
export function renderImageDigestMirrorSet(name: string, registries: readonly RegistryMirrorSpec[]): string {
    const metadataName =
        name
            .toLowerCase()
            .replace(/[^a-z0-9.-]+/g, "-")
            .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "") || "image-mirror";
    return stringifyYaml({
        apiVersion: "config.openshift.io/v1",
        kind: "ImageDigestMirrorSet",
        metadata: { name: metadataName },
        spec: {
            imageDigestMirrors: registries.map((r) => ({ source: r.source, mirrors: [...r.mirrors] })),
        },
    });
}

/** The host configuration outputs: HostMirrorConfig entries, registries.conf v2 text, ImageDigestMirrorSet YAML. */
export function hostConfigFor(
    spec: Pick<ImageMirrorSpec, "images" | "destination" | "repositoryPath" | "tls" | "name">,
): Pick<ImageMirrorState, "registries" | "registriesConf" | "imageDigestMirrorSet"> {
    const registries = mirrorRegistries(spec);
    if (registries.length === 0) {
        return { registries, registriesConf: "", imageDigestMirrorSet: "" };
    }
    const name = spec.name ?? "image-mirror";
    return {
        registries,
        registriesConf: renderRegistriesConf(name, registries),
        imageDigestMirrorSet: renderImageDigestMirrorSet(name, registries),
    };
}
