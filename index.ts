/**
 * The default stack of this repository (see Pulumi.yaml): a site mirror built from this
 * machine's own Debian archive (found in /etc/apt/sources.list.d), and a host pointed at it.
 * Everything it writes stays under .data/ (override with `pulumi config set dataDir <dir>`).
 *
 * Configuration (all optional): `packages` (JSON list of aptly queries, default ["hello"]),
 * `architectures` (JSON list, default ["amd64"]).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as openpgp from "openpgp";
import { systemDebianArchive } from "./provider/apt/system";
import { AptMirror, HostMirrorConfig } from "./sdk";

/** The mirror's signing key, made once and kept with the data (a real site brings its own, as a secret). */
async function signingKey(dir: string): Promise<string> {
    const file = path.join(dir, "mirror-signing-key.asc");
    if (!fs.existsSync(file)) {
        const { privateKey } = await openpgp.generateKey({
            type: "curve25519",
            userIDs: [{ name: "pulumi-airgap site mirror", email: "mirror@site.invalid" }],
            format: "armored",
        });
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(file, privateKey, { mode: 0o600 });
    }
    return fs.readFileSync(file, "utf8");
}

export = async () => {
    const config = new pulumi.Config();
    const data = path.resolve(__dirname, "..", config.get("dataDir") ?? ".data");
    const mirrorRoot = path.join(data, "mirror");
    const hostRoot = path.join(data, "host");
    fs.mkdirSync(mirrorRoot, { recursive: true });
    fs.mkdirSync(hostRoot, { recursive: true });

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
        signing: { privateKey: pulumi.secret(await signingKey(path.join(data, "keys"))) },
        lockFile: path.join(data, "debian.lock.json"),
    });

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
        mirrorPackages: mirror.packages,
        mirrorPath: mirror.publishedPath,
        mirrorBytes: mirror.bytes,
        hostFiles: host.files,
    };
};
