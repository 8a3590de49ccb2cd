import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../provider/dynamic/provider";
import type { VmAptSpec, VmImagesSpec } from "../provider/vm/content";
import { placeOfOutput, type VmHostConfig, type VmUrls } from "../provider/vm/mirror";
import type { VmNetwork, VmServices } from "../provider/vm/services";
import type { AptMirror } from "./aptMirror";
import { claimPlaces } from "./claims";
import type { ImageMirror } from "./imageMirror";

export interface MirrorVMPathArgs {
    /** Absolute path of the directory (files) or repository (git) to copy in. */
    source: pulumi.Input<string>;
    /** Where it is served, relative to the service's root, e.g. "images" or "model.git". */
    path: pulumi.Input<string>;
}

export interface MirrorVMArgs {
    /** The qcow2 image to write (absolute path; its directory must exist). */
    output: pulumi.Input<string>;
    /** APT mirrors whose published suites the VM serves under `/<prefix>/` on the APT port. */
    apt?: AptMirror[];
    /** Image mirrors (any destination) whose images the VM's registry serves, same digests, as `<registry>/<path>`. */
    images?: ImageMirror[];
    /** Directories served as plain files on the files port. */
    files?: pulumi.Input<pulumi.Input<MirrorVMPathArgs>[]>;
    /** Git repositories served for `git clone http://<vm>:<gitPort>/<path>`. */
    git?: pulumi.Input<pulumi.Input<MirrorVMPathArgs>[]>;
    /**
     * A bootable Debian cloud image (qcow2 or raw) with cloud-init, nginx and docker-registry.
     * Defaults to none: the output is then a data disk holding the content only.
     */
    baseImage?: pulumi.Input<string>;
    /** Defaults to the MCP mirror's ports: APT 80, registry 5000, git 8088, files 8078. */
    services?: pulumi.Input<Partial<VmServices>>;
    /** A static address for the VM. Defaults to DHCP. */
    network?: pulumi.Input<VmNetwork>;
    sshAuthorizedKeys?: pulumi.Input<pulumi.Input<string>[]>;
    /** Defaults to the resource name. */
    hostname?: pulumi.Input<string>;
    /** How hosts reach the VM, for `urls` and `hostConfig`. Defaults to network.address, else the host name. */
    address?: pulumi.Input<string>;
    /** Content above this ("200G", "512M", or bytes) is an error before anything is built. Defaults to no limit. */
    maxSize?: pulumi.Input<string>;
    /** Compress the qcow2 (smaller, slower to build and boot). Defaults to false. */
    compress?: pulumi.Input<boolean>;
}

function aptSpecOf(mirror: AptMirror): pulumi.Output<VmAptSpec & { releaseSha256: string }> {
    return pulumi
        .all([mirror.publish, mirror.source, mirror.publicKey, mirror.releaseSha256])
        .apply(([publish, source, publicKey, releaseSha256]) => ({
            root: publish.root,
            prefix: publish.prefix,
            distribution: publish.distribution ?? source.distribution,
            publicKey,
            // Not read by the build: it makes preview show the VM changing when the mirror does.
            releaseSha256,
        }));
}

function imagesSpecOf(mirror: ImageMirror): pulumi.Output<VmImagesSpec> {
    return pulumi.all([mirror.images, mirror.mirrored]).apply(([images, mirrored]) => ({ images, mirrored }));
}

/**
 * The offline mirror VM image (qcow2): the published APT suites, the mirrored images in a
 * registry's storage, plain files and git repositories in one ext4 filesystem; with `baseImage`,
 * appended to a bootable cloud image with a cloud-init seed that serves them on boot (nginx for
 * APT, files and git; docker-registry for images), as the MCP offline mirror image does.
 *
 * The content's digests are an input: preview shows which mirror or tree makes the image
 * rebuild. `pulumi refresh` reports an image missing or altered; `pulumi up` rebuilds it.
 */
export class MirrorVM extends pulumi.dynamic.Resource {
    declare public readonly path: pulumi.Output<string>;
    declare public readonly sha256: pulumi.Output<string>;
    declare public readonly virtualSizeBytes: pulumi.Output<number>;
    declare public readonly actualSizeBytes: pulumi.Output<number>;
    /** `sha256:…` of the content alone: the same mirrors and trees give the same digest. */
    declare public readonly contentDigest: pulumi.Output<string>;
    declare public readonly contentBytes: pulumi.Output<number>;
    /** Part → digest: `apt <prefix>/dists/<suite>`, `image <ref>`, `files <path>`, `git <path>`. */
    declare public readonly content: pulumi.Output<Record<string, string>>;
    /** What the VM serves: APT, registry (`host:port`), git and files URLs. */
    declare public readonly urls: pulumi.Output<VmUrls>;
    /** `registries` and `apt` arguments for HostMirrorConfig pointing hosts at the VM. */
    declare public readonly hostConfig: pulumi.Output<VmHostConfig>;
    /** Problems found by the last refresh; empty when the image is as built. */
    declare public readonly drift: pulumi.Output<string[]>;

    constructor(name: string, args: MirrorVMArgs, opts?: pulumi.CustomResourceOptions) {
        const output = pulumi.output(args.output).apply((o) => {
            if (typeof o === "string" && o !== "") {
                claimPlaces(`MirrorVM "${name}"`, "output", [placeOfOutput(o)], "give each MirrorVM its own output");
            }
            return o;
        });
        super(
            forwardingProvider("pulumi-airgap/provider/vm/operations"),
            name,
            {
                name,
                output,
                apt: pulumi.all((args.apt ?? []).map(aptSpecOf)),
                images: pulumi.all((args.images ?? []).map(imagesSpecOf)),
                files: args.files ?? [],
                git: args.git ?? [],
                baseImage: args.baseImage,
                services: args.services,
                network: args.network,
                sshAuthorizedKeys: args.sshAuthorizedKeys,
                hostname: args.hostname,
                address: args.address,
                maxSize: args.maxSize,
                compress: args.compress,
                content: undefined,
                baseImageSha256: undefined,
                path: undefined,
                sha256: undefined,
                virtualSizeBytes: undefined,
                actualSizeBytes: undefined,
                contentDigest: undefined,
                contentBytes: undefined,
                urls: undefined,
                hostConfig: undefined,
                drift: undefined,
            },
            opts,
            "airgap",
            "MirrorVM",
        );
    }
}
