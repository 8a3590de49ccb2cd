/**
 * A deployment repository's program for one disconnected site: an APT mirror of what the
 * OpenStack nodes install, the images of a MicroShift release carried across the air gap in an
 * archive, and the hosts pointed at both.
 *
 *   pulumi config set --secret mirrorSigningKey "$(cat signing-key.asc)"
 *   pulumi config set --secret pullSecret "$(cat pull-secret.json)"
 *   pulumi preview --diff     # which packages and images would change
 *   pulumi up                 # sync, publish, configure
 */
import * as pulumi from "@pulumi/pulumi";
import { AptMirror, HostMirrorConfig, ImageMirror, loadMicroShiftRelease } from "pulumi-airgap";

const config = new pulumi.Config();
const site = config.get("mirrorHost") ?? "mirror.site.internal";

const debian = new AptMirror("debian", {
    source: {
        url: config.get("debianUrl") ?? "http://deb.example.org/debian",
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
    },
    packages: ["openstack-pkg-tools", "python3-openstackclient", "chrony", "jq (>= 1.6)"],
    withDeps: true,
    publish: { root: "/srv/mirror", prefix: "debian", origin: "site" },
    signing: { privateKey: config.requireSecret("mirrorSigningKey") },
    lockFile: "debian.lock.json",
});

// Connected side: registry → archive; the archive then crosses the air gap.
const release = new ImageMirror("microshift-archive", {
    images: loadMicroShiftRelease("release-x86_64.json"),
    destination: "oci-archive:/media/transfer/microshift-images.tar",
    auth: config.requireSecret("pullSecret"),
    lockFile: "images.lock.json",
});

// Disconnected side: archive → the site registry, digests preserved.
const mirrored = new ImageMirror(
    "microshift",
    {
        images: loadMicroShiftRelease("release-x86_64.json"),
        source: "oci-archive:/media/transfer/microshift-images.tar",
        destination: `docker://${site}:5000`,
        repositoryPath: "strip-registry",
    },
    { dependsOn: [release] },
);

const host = new HostMirrorConfig("node", {
    target: { local: { root: "/" } },
    registries: mirrored.registries,
    apt: [
        {
            name: "site-debian",
            uris: [`http://${site}/debian`],
            suites: ["bookworm"],
            components: ["main"],
            signedBy: debian.publicKey,
        },
    ],
});

export const packages = debian.packages;
export const images = mirrored.images;
export const imageDigestMirrorSet = mirrored.imageDigestMirrorSet;
export const hostFiles = host.files;
