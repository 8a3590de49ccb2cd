import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../provider/dynamic/provider";
import type { RegistryMirrorSpec } from "../provider/host/types";
import {
    destinationNames,
    IMAGE_DEFAULTS,
    type ImageLock,
    type ImageMirrorSpec,
    parseMirrorSource,
    resolveImageLock,
} from "../provider/oci/mirror";
import { placeOfDestination } from "../provider/oci/naming";
import { claimPlaces } from "./claims";
import { inputsDigest, pinnedLock, resolvingInput } from "./lock";

export interface ImageMirrorTlsArgs {
    /** PEM CA certificate(s) trusted for every registry, in addition to the system ones. */
    caCert?: pulumi.Input<string>;
    /** Registries (`host[:port]`) reached without TLS verification, falling back to plain HTTP. */
    insecureRegistries?: pulumi.Input<pulumi.Input<string>[]>;
}

export interface ImageMirrorArgs {
    /** Image references: "quay.io/org/app:1.2", "registry.example/ns/tool@sha256:…". */
    images: pulumi.Input<pulumi.Input<string>[]>;
    /** `docker://host[:port][/namespace]`, `oci:/path/layout` or `oci-archive:/path/images.tar`. */
    destination: pulumi.Input<string>;
    /**
     * Where the images are read from: "docker://" (each image's own registry), or a layout or
     * archive written by another ImageMirror (disk-to-mirror). Defaults to "docker://".
     */
    source?: pulumi.Input<string>;
    /**
     * How a registry destination names a source repository: "keep-registry"
     * (`mirror:5000/quay.io/org/app`) or "strip-registry" (`mirror:5000/org/app`).
     * Defaults to "keep-registry" (`IMAGE_DEFAULTS`). Layouts and archives always name images by their full source name.
     */
    repositoryPath?: pulumi.Input<"keep-registry" | "strip-registry">;
    /** "os/arch[/variant]" to copy from multi-platform images. Defaults to every platform (the whole index). */
    platforms?: pulumi.Input<pulumi.Input<string>[]>;
    /** Docker config.json / pull-secret text for the source and destination registries. Pass it as a secret. */
    auth?: pulumi.Input<string>;
    tls?: pulumi.Input<ImageMirrorTlsArgs>;
    /**
     * Pins the resolved digests: while `images` and `source` are unchanged, the lock is read from
     * this file and the sources are not contacted to resolve. Written by `pulumi up`.
     */
    lockFile?: string;
    /** Blobs copied at once. Defaults to 4 (`IMAGE_DEFAULTS.concurrency`). */
    concurrency?: pulumi.Input<number>;
}

interface Resolved {
    images: string[];
    source?: string;
    auth?: string;
    tls?: { caCert?: string; insecureRegistries?: string[] };
}

/**
 * A layout or archive source that is not there yet, as before the first update of the resource
 * that writes it. (A source that does not parse is left to the resolution, which names it.)
 */
function notWrittenYet(source: string | undefined): boolean {
    let target: ReturnType<typeof parseMirrorSource>;
    try {
        target = parseMirrorSource(source);
    } catch {
        return false;
    }
    return target !== undefined && !fs.existsSync(target.path);
}

/** Resolves the lock while the program runs (preview too), or reads it from the lock file. */
function lockFor(name: string, r: Resolved, lockFile: string | undefined): Promise<ImageLock> {
    return pinnedLock({
        name,
        file: lockFile,
        inputs: inputsDigest({ images: [...r.images].sort(), source: r.source ?? "docker://" }),
        field: "images",
        resolve: () => resolveImageLock(r),
    });
}

/**
 * An image mirror: resolves each image to the digest of its manifest or index, and copies it
 * with every platform (or the ones asked for), digests preserved, registry → registry,
 * registry → OCI layout or archive (to carry across the air gap), or layout/archive → registry.
 *
 * The resolved digests (the lock, reference → digest) are an input, so `pulumi preview` lists
 * each image added, removed or whose digest moved upstream; `pulumi refresh` re-resolves the
 * destination and reports images missing there or pointing to another digest.
 */
/**
 * Claims the tags this mirror writes: one ImageMirror of a program per destination tag. The
 * second would find the tag there and own nothing, and destroying the first would remove an
 * image the second still serves.
 */
function claimDestinations(
    resource: string,
    images: readonly string[],
    destination: string,
    repositoryPath: ImageMirrorSpec["repositoryPath"] | undefined,
): void {
    let names: string[];
    try {
        names = destinationNames(images, placeOfDestination(destination), repositoryPath);
    } catch {
        return; // invalid inputs: check and the lock resolution name the argument
    }
    claimPlaces(
        `ImageMirror "${resource}"`,
        "images",
        names,
        "list each image in one ImageMirror per destination (or give them different destinations)",
    );
}

export class ImageMirror extends pulumi.dynamic.Resource {
    /** The lock: source reference → digest, as mirrored. */
    declare public readonly images: pulumi.Output<Record<string, string>>;
    /** Source reference → the image at the destination by digest. */
    declare public readonly mirrored: pulumi.Output<Record<string, string>>;
    /** Bytes of the mirrored blobs and manifests, each blob counted once. */
    declare public readonly bytes: pulumi.Output<number>;
    declare public readonly blobCount: pulumi.Output<number>;
    /** Entries for HostMirrorConfig's `registries`, one per source registry (registry destinations). */
    declare public readonly registries: pulumi.Output<RegistryMirrorSpec[]>;
    /** OpenShift ImageDigestMirrorSet YAML ("" unless the destination is a registry). */
    declare public readonly imageDigestMirrorSet: pulumi.Output<string>;
    /** containers-registries.conf(5) v2 text, mirror-by-digest-only ("" unless the destination is a registry). */
    declare public readonly registriesConf: pulumi.Output<string>;
    /** Problems found by the last refresh; empty when the destination is as mirrored. */
    declare public readonly drift: pulumi.Output<string[]>;
    /**
     * Where the images were mirrored to, once they are. Give it as another ImageMirror's
     * `source` to copy from the layout or archive this one writes: that one then resolves its
     * lock after this one is done (in the first preview, before anything is written, its lock
     * shows as unknown).
     */
    declare public readonly destination: pulumi.Output<string>;

    constructor(name: string, args: ImageMirrorArgs, opts?: pulumi.CustomResourceOptions) {
        const lock = pulumi
            .all([args.images, args.source, args.auth, args.tls, args.destination, args.repositoryPath])
            .apply(([images, source, auth, tls, destination, repositoryPath]): pulumi.Input<ImageLock> => {
                claimDestinations(name, images, destination, repositoryPath);
                if (pulumi.runtime.isDryRun() && notWrittenYet(source)) {
                    return pulumi.output(pulumi.unknown) as unknown as pulumi.Output<ImageLock>;
                }
                return resolvingInput("ImageMirror", name, source === undefined ? "images" : "source", () =>
                    lockFor(
                        name,
                        {
                            images,
                            ...(source === undefined ? {} : { source }),
                            ...(auth === undefined ? {} : { auth }),
                            ...(tls === undefined ? {} : { tls: tls as Resolved["tls"] }),
                        },
                        args.lockFile,
                    ),
                );
            });
        super(
            forwardingProvider("pulumi-airgap/provider/oci/operations"),
            name,
            {
                // Resolved with the credentials, but the digests are not secret: preview must show them.
                images: pulumi.unsecret(lock),
                destination: args.destination,
                source: args.source,
                repositoryPath: args.repositoryPath ?? IMAGE_DEFAULTS.repositoryPath,
                platforms: args.platforms,
                // Secret even when the program passes it as plain text: never in clear in the state.
                auth: args.auth === undefined ? undefined : pulumi.secret(args.auth),
                tls: args.tls,
                concurrency: args.concurrency,
                name,
                mirrored: undefined,
                bytes: undefined,
                blobCount: undefined,
                registries: undefined,
                imageDigestMirrorSet: undefined,
                registriesConf: undefined,
                pushed: undefined,
                drift: undefined,
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "auth"] },
            "airgap",
            "ImageMirror",
        );
    }
}
