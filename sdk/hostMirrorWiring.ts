/**
 * HostMirrorConfig inputs taken from the resources that serve the mirrors: an ImageMirror's
 * `registries` entries, and an AptMirror's published suite (URL, suite, components, public key),
 * so that a program does not repeat them.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AptPublishSpec, AptSourceSpec } from "../provider/apt/mirror";
import type { AptSourceSpec as HostAptSourceSpec, RegistryMirrorSpec } from "../provider/host/types";
import type { AptMirror } from "./aptMirror";
import type { ImageMirror } from "./imageMirror";

export interface HostAptMirrorArgs {
    /** The AptMirror whose published suite the host uses. */
    mirror: Pick<AptMirror, "publish" | "source" | "publicKey">;
    /** Where hosts reach the mirror's publish root (`publish.root`), e.g. "http://mirror.site:8080". */
    url: pulumi.Input<string>;
    /**
     * File name of the source and keyring (`etc/apt/sources.list.d/<name>.sources`). Defaults to
     * the publish prefix and suite, e.g. "debian-bookworm".
     */
    name?: string;
}

/** The deb822 source of one published AptMirror suite, as hosts reach it at `url`. */
export function aptSourceOfMirror(
    at: string,
    url: string,
    publish: AptPublishSpec,
    source: AptSourceSpec,
    publicKey: string,
    name: string | undefined,
): HostAptSourceSpec {
    const suite = publish.distribution ?? source.distribution;
    if (!source.components || source.components.length === 0) {
        throw new Error(
            `${at}.mirror: the AptMirror's source lists no components (it mirrors every component its Release lists): ` +
                "give source.components, or list this source in `apt` with its components",
        );
    }
    const prefix = publish.prefix.replace(/^\/+|\/+$/g, "");
    return {
        name: name ?? `${prefix}-${suite}`.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, ""),
        uris: [`${url.replace(/\/+$/, "")}/${prefix}`],
        suites: [suite],
        components: [...source.components],
        ...(source.architectures && source.architectures.length > 0
            ? { architectures: [...source.architectures] }
            : {}),
        signedBy: publicKey,
    };
}

/** `registries` followed by the `registries` of each ImageMirror. */
export function registriesWithImageMirrors(
    registries: pulumi.Input<pulumi.Input<unknown>[]> | undefined,
    imageMirrors: readonly Pick<ImageMirror, "registries">[] | undefined,
): pulumi.Output<RegistryMirrorSpec[]> {
    return pulumi
        .all([
            pulumi.output(registries ?? []) as pulumi.Output<unknown>,
            ...(imageMirrors ?? []).map((m) => m.registries),
        ])
        .apply(([own, ...more]) => [...(own as RegistryMirrorSpec[]), ...(more as RegistryMirrorSpec[][]).flat()]);
}

/** `apt` followed by the source of each AptMirror. */
export function aptWithAptMirrors(
    apt: pulumi.Input<pulumi.Input<unknown>[]> | undefined,
    aptMirrors: readonly HostAptMirrorArgs[] | undefined,
): pulumi.Output<HostAptSourceSpec[]> {
    const fromMirrors = (aptMirrors ?? []).map((m, i) =>
        pulumi
            .all([m.url, m.mirror.publish, m.mirror.source, m.mirror.publicKey])
            .apply(([url, publish, source, key]) =>
                aptSourceOfMirror(`aptMirrors[${i}]`, url, publish, source, key, m.name),
            ),
    );
    return pulumi
        .all([pulumi.output(apt ?? []) as pulumi.Output<unknown>, ...fromMirrors])
        .apply(([own, ...more]) => [...(own as HostAptSourceSpec[]), ...(more as HostAptSourceSpec[])]);
}
