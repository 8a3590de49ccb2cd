/**
 * A deployment repository's program for one disconnected site: an APT mirror of what the
 * OpenStack nodes install, the images of a MicroShift release carried across the air gap in an
 * archive, and the hosts pointed at both.
 *
 *   pulumi config set --secret mirrorSigningKey "$(cat signing-key.asc)"
 *   pulumi config set --secret pullSecret "$(cat pull-secret.json)"
 *   pulumi preview --diff     # which packages and images would change
 *   pulumi up                 # sync, publish, configure
 *
 * Every location is stack configuration, defaulting to this site's:
 *
 *   debianUrl           upstream archive            http://deb.example.org/debian
 *   debianKeyring       its keyring (.gpg, .asc)    /usr/share/keyrings/debian-archive-keyring.gpg
 *   debianPackages      JSON list of queries        the OpenStack nodes' packages below
 *   mirrorRoot          served as mirrorUrl         /srv/mirror
 *   mirrorHost          the site's mirror host      mirror.site.internal
 *   mirrorUrl           how hosts reach mirrorRoot  http://<mirrorHost>
 *   siteRegistry        host[:port]                 <mirrorHost>:5000
 *   releaseFile         MicroShift release file     release-x86_64.json
 *   transferDir         carried across the air gap  /media/transfer
 *   hostRoot            the host configured         /
 *   insecureRegistries  JSON list of registries reached over plain HTTP or unverified TLS (none)
 */
import * as pulumi from "@pulumi/pulumi";
import { AptMirror, HostMirrorConfig, ImageMirror, loadMicroShiftRelease } from "pulumi-airgap";

const config = new pulumi.Config();
const site = config.get("mirrorHost") ?? "mirror.site.internal";
const mirrorUrl = config.get("mirrorUrl") ?? `http://${site}`;
const siteRegistry = config.get("siteRegistry") ?? `${site}:5000`;
const releaseImages = loadMicroShiftRelease(config.get("releaseFile") ?? "release-x86_64.json");
const archive = `oci-archive:${config.get("transferDir") ?? "/media/transfer"}/microshift-images.tar`;
const insecureRegistries = config.getObject<string[]>("insecureRegistries");
const tls = insecureRegistries === undefined ? {} : { tls: { insecureRegistries } };

const debian = new AptMirror("debian", {
    source: {
        url: config.get("debianUrl") ?? "http://deb.example.org/debian",
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        keyring: config.get("debianKeyring") ?? "/usr/share/keyrings/debian-archive-keyring.gpg",
    },
    packages: config.getObject<string[]>("debianPackages") ?? [
        "openstack-pkg-tools",
        "python3-openstackclient",
        "chrony",
        "jq (>= 1.6)",
    ],
    withDeps: true,
    publish: { root: config.get("mirrorRoot") ?? "/srv/mirror", prefix: "debian", origin: "site" },
    signing: { privateKey: config.requireSecret("mirrorSigningKey") },
    lockFile: "debian.lock.json",
});

// Connected side: registry → archive; the archive then crosses the air gap.
const release = new ImageMirror("microshift-archive", {
    images: releaseImages,
    destination: archive,
    auth: config.requireSecret("pullSecret"),
    lockFile: "images.lock.json",
    ...tls,
});

// Disconnected side: archive → the site registry, digests preserved. The source is the first
// mirror's destination output, so the archive is read once it has been written.
const mirrored = new ImageMirror("microshift", {
    images: releaseImages,
    source: release.destination,
    destination: `docker://${siteRegistry}`,
    repositoryPath: "strip-registry",
    ...tls,
});

const host = new HostMirrorConfig("node", {
    target: { local: { root: config.get("hostRoot") ?? "/" } },
    registries: mirrored.registries,
    apt: [
        {
            name: "site-debian",
            uris: [`${mirrorUrl}/debian`],
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
