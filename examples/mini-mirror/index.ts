/**
 * OpenStack-Helm's mini-mirror, declared: the `sources/` tree mini-mirror builds its image from
 * (`<prefix>/<name>/source.txt` = `source_url source_key_url dist components`,
 * `<prefix>/<name>/packages.txt` = one package query a line), or its YAML form, becomes one
 * signed APT suite per source under `<publishRoot>/<prefix>/dists/<dist>`, served by an nginx
 * container on port 8888 like the mini-mirror chart (8888 → 80), and optionally a mirror VM image.
 *
 * Stack configuration:
 *
 *   sourcesDir              the sources/ tree                       sources
 *   sourcesYaml             the YAML form instead of the tree       none
 *   publishRoot             directory the suites are written to     /srv/mini-mirror
 *   signingKey (secret)     armored private key (RELEASE_SIGN_KEY)  required
 *   signingPassphrase (s.)  its passphrase                          none
 *   keyring                 extra keyring for the upstream Releases none
 *   lockDir                 lock files pinning the packages         locks
 *   serve                   "false": no container, suites only      true
 *   image                   nginx image                             docker.io/library/nginx:1.27
 *   pullImage               "false": the node already has the image true
 *   port                    host port                               8888
 *   vmOutput                also build this qcow2 mirror VM image   none
 *   vmBaseImage             a bootable base for it                  none (data disk)
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MiniMirror } from "pulumi-airgap";

const config = new pulumi.Config();
const sourcesYaml = config.get("sourcesYaml");
const publishRoot = path.resolve(config.get("publishRoot") ?? "/srv/mini-mirror");
const lockDir = path.resolve(config.get("lockDir") ?? "locks");
const keyring = config.get("keyring");
const vmOutput = config.get("vmOutput");
const vmBaseImage = config.get("vmBaseImage");
const image = config.get("image");
const passphrase = config.getSecret("signingPassphrase");

const mirror = new MiniMirror("mini-mirror", {
    ...(sourcesYaml === undefined ? { sourcesDir: config.get("sourcesDir") ?? "sources" } : { sourcesYaml }),
    publishRoot,
    signing: {
        privateKey: config.requireSecret("signingKey"),
        ...(passphrase === undefined ? {} : { passphrase }),
    },
    ...(keyring === undefined ? {} : { trust: { keyring } }),
    lockDir,
    serve: config.getBoolean("serve") ?? true,
    container: {
        ...(image === undefined ? {} : { image }),
        pullImage: config.getBoolean("pullImage") ?? true,
        port: config.getNumber("port") ?? 8888,
    },
    ...(vmOutput === undefined
        ? {}
        : { vm: { output: path.resolve(vmOutput), ...(vmBaseImage === undefined ? {} : { baseImage: vmBaseImage }) } }),
});

export const suites = mirror.suites.map((s) => `${s.prefix}/${s.distribution}`);
export const packages = mirror.packages;
export const aptLines = mirror.aptLines;
export const publicKey = mirror.publicKey;
export const vmImage = mirror.vm?.path;
