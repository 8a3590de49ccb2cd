import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { AirgapError } from "../../provider/errors";
import { loadImageList, loadMicroShiftRelease } from "../../provider/oci/loaders";
import { parseDockerReference } from "../../provider/oci/reference";
import { HostMirrorConfig, type HostTargetArgs, type RegistryMirrorArgs } from "../hostMirrorConfig";
import { ImageMirror } from "../imageMirror";
import { failInput, readInput } from "./common";

const TYPE = "airgap:components:MicroShiftAirgap";
const SHOWN = "MicroShiftAirgap";

/** The names MicroShift's documentation gives the host files. */
export const MICROSHIFT_DEFAULTS = {
    /** `etc/containers/registries.conf.d/999-microshift-mirror.conf`. */
    registriesName: "999-microshift-mirror",
    /** The CA file under the trust anchors, `<name>.crt`. */
    caName: "microshift-mirror-ca",
    repositoryPath: "strip-registry",
    mode: "direct",
} as const;

/**
 * - "direct": the release's registries → the site registry, in one stack (a host that reaches both);
 * - "connected": the release's registries → `oci-archive:<archive>`, on the side with internet;
 * - "disconnected": `oci-archive:<archive>` (carried across) → the site registry, and the hosts.
 */
export type MicroShiftMode = "direct" | "connected" | "disconnected";

export interface MicroShiftHostArgs {
    /** Where the files go (the local host, or another one as HostMirrorConfig reaches it). */
    target: pulumi.Input<HostTargetArgs>;
    /** Resource name of the host's HostMirrorConfig. Defaults to `<component>-host<index>`. */
    name?: string;
}

export interface MicroShiftAirgapArgs {
    /** MicroShift's `release-<arch>.json` (package microshift-release-info): the values of `.images`. */
    releaseFile: string;
    /** More images to carry, appended to the release's (the seed's user-specific references). Defaults to none. */
    extraImages?: string[];
    /** A file of more images, one reference a line (`#` comments). Defaults to none. */
    extraImagesFile?: string;
    /** Defaults to "direct" (registries → site registry in one stack). */
    mode?: MicroShiftMode;
    /**
     * The OCI archive carried across the air gap (absolute path): written in "connected" mode,
     * read in "disconnected" mode (it must be there). Required in those modes; defaults to none.
     */
    archive?: string;
    /** The site's mirror registry, `host[:port]`. Required in "direct" and "disconnected" modes; defaults to none. */
    registry?: string;
    /**
     * How the site registry names a source repository: "strip-registry" (`<registry>/org/app`,
     * as MicroShift's upload script does) or "keep-registry" (`<registry>/quay.io/org/app`).
     * Defaults to "strip-registry".
     */
    repositoryPath?: "strip-registry" | "keep-registry";
    /** Pull secret (Docker config.json) for the source and site registries. Pass it as a secret. Defaults to none. */
    auth?: pulumi.Input<string>;
    /**
     * PEM CA certificate of the site registry: trusted when mirroring, and written to every
     * host's trust anchors. Defaults to none (the system trust).
     */
    caCertificate?: pulumi.Input<string>;
    /** Reach the site registry over plain HTTP or unverified TLS (and tell the hosts so). Defaults to false. */
    insecure?: boolean;
    /**
     * Source registries (`host[:port]`) reached over plain HTTP or unverified TLS, e.g. a local
     * registry standing in for quay.io. Defaults to none.
     */
    insecureSourceRegistries?: string[];
    /** Hosts pointed at the site registry ("direct" and "disconnected" modes). Defaults to none. */
    hosts?: MicroShiftHostArgs[];
    /**
     * Source registries (or `registry/namespace` prefixes) the hosts send to the mirror. Defaults
     * to the registries the images are named from.
     */
    mirroredRegistries?: string[];
    /** Pins the resolved digests (see ImageMirror `lockFile`). Defaults to none. */
    lockFile?: string;
    /** Blobs copied at once. Defaults to 4 (ImageMirror's default). */
    concurrency?: pulumi.Input<number>;
}

/** The images of the release file and the extra ones, in order, each once. */
export function microShiftImages(
    args: Pick<MicroShiftAirgapArgs, "releaseFile" | "extraImages" | "extraImagesFile">,
): string[] {
    if (typeof args.releaseFile !== "string" || args.releaseFile === "") {
        throw new AirgapError("ERR_INVALID_ARGUMENT", "releaseFile: the path of release-<arch>.json is required", {
            argument: "releaseFile",
        });
    }
    const images = loadMicroShiftRelease(args.releaseFile);
    if (args.extraImagesFile !== undefined) {
        images.push(...loadImageList(args.extraImagesFile));
    }
    (args.extraImages ?? []).forEach((ref, i) => {
        try {
            parseDockerReference(ref);
        } catch (err) {
            throw new AirgapError("ERR_INVALID_ARGUMENT", `extraImages[${i}]: ${(err as Error).message}`, {
                argument: `extraImages[${i}]`,
            });
        }
        images.push(ref);
    });
    return [...new Set(images)];
}

/**
 * The host entries for `images` mirrored to `registry`: one per source registry (or the
 * prefixes given), by digest only, as MicroShift's `999-microshift-mirror.conf` has them.
 */
export function microShiftRegistries(
    images: readonly string[],
    registry: string,
    opts: {
        repositoryPath?: "strip-registry" | "keep-registry";
        insecure?: boolean;
        mirroredRegistries?: string[];
    } = {},
): RegistryMirrorArgs[] {
    const sources = opts.mirroredRegistries ?? [...new Set(images.map((ref) => parseDockerReference(ref).domain))];
    const keep = (opts.repositoryPath ?? MICROSHIFT_DEFAULTS.repositoryPath) === "keep-registry";
    return sources.map((source) => {
        const domain = source.split("/")[0]!;
        const rest = source.slice(domain.length);
        return {
            source,
            mirrors: [keep ? `${registry}/${source}` : `${registry}${rest}`],
            mirrorByDigestOnly: true,
            insecure: opts.insecure ?? false,
        };
    });
}

/** Checks the mode's arguments; throws naming the argument. */
function checkMode(args: MicroShiftAirgapArgs): MicroShiftMode {
    const mode = args.mode ?? MICROSHIFT_DEFAULTS.mode;
    const bad = (argument: string, problem: string) =>
        new AirgapError("ERR_INVALID_ARGUMENT", `${argument}: ${problem}`, { argument });
    if (!["direct", "connected", "disconnected"].includes(mode)) {
        throw bad("mode", `"${mode}" is not "direct", "connected" or "disconnected"`);
    }
    if (mode !== "direct") {
        if (args.archive === undefined || args.archive === "") {
            throw bad(
                "archive",
                `${mode} mode needs the OCI archive carried across the air gap (e.g. "/media/transfer/microshift.tar")`,
            );
        }
        if (!path.isAbsolute(args.archive)) {
            throw bad("archive", `"${args.archive}" is not an absolute path`);
        }
    }
    if (mode === "disconnected" && !fs.existsSync(args.archive!)) {
        throw bad("archive", `${args.archive} is not there: run the connected stack first and carry its archive here`);
    }
    if (mode !== "connected" && (args.registry === undefined || args.registry === "")) {
        throw bad("registry", `${mode} mode needs the site registry, host[:port]`);
    }
    if (mode === "connected" && (args.hosts ?? []).length > 0) {
        throw bad("hosts", "the connected side configures no host: give hosts to the disconnected stack");
    }
    if (args.repositoryPath !== undefined && !["strip-registry", "keep-registry"].includes(args.repositoryPath)) {
        throw bad("repositoryPath", `"${args.repositoryPath}" is not "strip-registry" or "keep-registry"`);
    }
    return mode;
}

/**
 * MicroShift's air-gap procedure as a component: the images of `release-<arch>.json` (and any
 * extra ones) mirrored with their digests to the site registry, directly or across the air gap
 * through an `oci-archive:` file (a "connected" stack writes it, a "disconnected" stack uploads
 * it), and every host given `etc/containers/registries.conf.d/999-microshift-mirror.conf`
 * (`mirror-by-digest-only = true`) and the registry's CA under the RHEL trust anchors.
 */
export class MicroShiftAirgap extends pulumi.ComponentResource {
    public readonly mode: MicroShiftMode;
    /** The references carried, release first. */
    public readonly imageList: string[];
    /** The image mirror of this mode's side. */
    public readonly mirror: ImageMirror;
    /** One per host ("direct" and "disconnected" modes). */
    public readonly hosts: HostMirrorConfig[];
    /** The lock: reference → digest. */
    public readonly images: pulumi.Output<Record<string, string>>;
    /** Where the images went: `oci-archive:<archive>` or `docker://<registry>`. */
    public readonly destination: pulumi.Output<string>;
    /** What the hosts are given (empty in "connected" mode). */
    public readonly registries: RegistryMirrorArgs[];

    constructor(name: string, args: MicroShiftAirgapArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TYPE, name, {}, opts);
        const mode = readInput(SHOWN, name, () => checkMode(args));
        const images = readInput(SHOWN, name, () => microShiftImages(args));
        const registries =
            mode === "connected"
                ? []
                : readInput(SHOWN, name, () =>
                      microShiftRegistries(images, args.registry!, {
                          repositoryPath: args.repositoryPath,
                          insecure: args.insecure,
                          mirroredRegistries: args.mirroredRegistries,
                      }),
                  );
        const insecureRegistries = [
            ...(args.insecureSourceRegistries ?? []),
            ...(args.insecure && mode !== "connected" && args.registry !== undefined ? [args.registry] : []),
        ];
        const tls =
            args.caCertificate === undefined && insecureRegistries.length === 0
                ? undefined
                : {
                      ...(args.caCertificate === undefined ? {} : { caCert: args.caCertificate }),
                      ...(insecureRegistries.length === 0 ? {} : { insecureRegistries }),
                  };
        const common = {
            images,
            ...(args.auth === undefined ? {} : { auth: args.auth }),
            ...(tls === undefined ? {} : { tls }),
            ...(args.lockFile === undefined ? {} : { lockFile: args.lockFile }),
            ...(args.concurrency === undefined ? {} : { concurrency: args.concurrency }),
        };
        const repositoryPath = args.repositoryPath ?? MICROSHIFT_DEFAULTS.repositoryPath;
        this.mode = mode;
        this.imageList = images;
        this.registries = registries;
        this.mirror =
            mode === "connected"
                ? new ImageMirror(
                      `${name}-images`,
                      { ...common, destination: `oci-archive:${args.archive}` },
                      { parent: this },
                  )
                : new ImageMirror(
                      `${name}-images`,
                      {
                          ...common,
                          ...(mode === "disconnected" ? { source: `oci-archive:${args.archive}` } : {}),
                          destination: `docker://${args.registry}`,
                          repositoryPath,
                      },
                      { parent: this },
                  );
        (args.hosts ?? []).forEach((h, i) => {
            if (h?.target === undefined) {
                failInput(SHOWN, name, new Error(`hosts[${i}].target: required (e.g. { local: { root: "/" } })`));
            }
        });
        this.hosts = (args.hosts ?? []).map(
            (h, i) =>
                new HostMirrorConfig(
                    h.name ?? `${name}-host${i}`,
                    {
                        target: h.target,
                        name: MICROSHIFT_DEFAULTS.registriesName,
                        registries,
                        ...(args.caCertificate === undefined
                            ? {}
                            : {
                                  caCertificates: [{ name: MICROSHIFT_DEFAULTS.caName, pem: args.caCertificate }],
                                  // RHEL trust anchors: etc/pki/ca-trust/source/anchors/<name>.crt.
                                  caTrust: "rhel",
                              }),
                    },
                    // The hosts are pointed at the registry once it serves the images.
                    { parent: this, dependsOn: [this.mirror] },
                ),
        );
        this.images = this.mirror.images;
        this.destination = this.mirror.destination;
        this.registerOutputs({
            mode,
            images: this.images,
            destination: this.destination,
            registries,
            hostFiles: pulumi.all(this.hosts.map((h) => h.files)),
        });
    }
}
