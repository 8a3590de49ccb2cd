/**
 * The default stack of this repository (see Pulumi.yaml): a site mirror built from this
 * machine's own Debian archive (found in /etc/apt/sources.list.d), and a host pointed at it.
 * Everything it writes stays under .data/ (override with `pulumi config set dataDir <dir>`).
 *
 * Configuration: `signingKey` (secret: the mirror's armored private key; scripts/main.sh makes one
 * on the first run), and, all optional, `packages` (JSON list of aptly queries, default ["hello"]),
 * `architectures` (JSON list, default ["amd64"]), `dataDir`, `hostRoot` (the root the host files
 * go under; default `<dataDir>/host`: set it to "/" to configure this machine itself) and
 * `imageOutput` (the mirror VM data image; default `<dataDir>/images/mirror.qcow2`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { systemDebianArchive } from "./provider/apt/system";
import { AptMirror, HostMirrorConfig, MirrorVM } from "./sdk";

export = async () => {
    const config = new pulumi.Config();
    const data = path.resolve(__dirname, "..", config.get("dataDir") ?? ".data");
    const mirrorRoot = path.join(data, "mirror");
    const hostRoot = config.get("hostRoot") ?? path.join(data, "host");
    const imageOutput = config.get("imageOutput") ?? path.join(data, "images", "mirror.qcow2");
    for (const dir of [mirrorRoot, hostRoot, path.dirname(imageOutput)]) fs.mkdirSync(dir, { recursive: true });

    const archive = systemDebianArchive();
    if (!archive) {
        throw new Error("no Debian archive with a main component in /etc/apt/sources.list.d to mirror from");
    }
    const mirror = new AptMirror("debian", {
        source: {
            url: archive.url,
            distribution: archive.distribution,
            components: ["main"],
            architectures: config.getObject<string[]>("architectures") ?? ["amd64"],
            keyring: archive.keyring,
        },
        packages: config.getObject<string[]>("packages") ?? ["hello"],
        withDeps: true,
        publish: { root: mirrorRoot, prefix: "debian", origin: "pulumi-airgap site" },
        signing: { privateKey: config.requireSecret("signingKey") },
        lockFile: path.join(data, "debian.lock.json"),
    });

    // The mirror VM's data disk: the published suite in an ext4 filesystem, as a qcow2.
    const image = new MirrorVM("mirror-image", { output: imageOutput, apt: [mirror] });

    const host = new HostMirrorConfig("site-host", {
        target: { local: { root: hostRoot } },
        registries: [
            { source: "quay.io", mirrors: ["mirror.site.internal:5000"] },
            { source: "registry.k8s.io", mirrors: ["mirror.site.internal:5000/registry.k8s.io"] },
        ],
        apt: [
            {
                name: "site-debian",
                uris: [pulumi.interpolate`file://${mirror.publishedPath}`],
                suites: [archive.distribution],
                components: ["main"],
                signedBy: mirror.publicKey,
            },
        ],
    });
    return {
        mirrorPath: mirror.publishedPath,
        mirrorPackageCount: mirror.packageCount,
        mirrorBytes: mirror.bytes,
        mirrorPackages: mirror.packages,
        imagePath: image.path,
        imageBytes: image.actualSizeBytes,
        imageContentDigest: image.contentDigest,
        hostFiles: host.files,
        aptLine: pulumi.interpolate`deb [signed-by=/etc/apt/keyrings/site-debian.asc] file://${mirror.publishedPath} ${archive.distribution} main`,
    };
};
