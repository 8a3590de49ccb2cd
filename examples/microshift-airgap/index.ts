/**
 * MicroShift in an air-gapped network, as Red Hat's "Mirroring container images for
 * disconnected installations" describes it, in two stacks of one program:
 *
 *   connected     release-<arch>.json (+ extraImages) → oci-archive:<archive> on the transfer media
 *   disconnected  oci-archive:<archive> → the site registry, digests preserved; every host gets
 *                 etc/containers/registries.conf.d/999-microshift-mirror.conf (mirror-by-digest-only)
 *                 and the registry's CA under etc/pki/ca-trust/source/anchors
 *
 * (mode "direct" does both in one stack on a host that reaches the internet and the registry.)
 *
 * Stack configuration (see Pulumi.connected.yaml and Pulumi.disconnected.yaml):
 *
 *   mode                      direct | connected | disconnected          direct
 *   releaseFile               MicroShift's release-<arch>.json           release-x86_64.json
 *   extraImages               JSON list of more references               none
 *   archive                   the OCI archive on the transfer media      (connected, disconnected)
 *   registry                  the site registry, host[:port]             (direct, disconnected)
 *   caFile                    PEM CA of the site registry                none (system trust)
 *   insecure                  "true": the site registry is plain HTTP    false
 *   insecureSourceRegistries  JSON list of source registries on HTTP     none
 *   hostRoots                 JSON list of host roots to configure       none ("/" for this host)
 *   lockFile                  pins the digests                           images.<mode>.lock.json
 *   pullSecret (secret)       pull secret for the source registries      none
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MicroShiftAirgap, type MicroShiftMode } from "pulumi-airgap";

const config = new pulumi.Config();
const mode = (config.get("mode") ?? "direct") as MicroShiftMode;
const caFile = config.get("caFile");
const archive = config.get("archive");

const microshift = new MicroShiftAirgap("microshift", {
    mode,
    releaseFile: config.get("releaseFile") ?? "release-x86_64.json",
    extraImages: config.getObject<string[]>("extraImages"),
    archive: archive === undefined ? undefined : path.resolve(archive),
    registry: config.get("registry"),
    caCertificate: caFile === undefined ? undefined : fs.readFileSync(caFile, "utf8"),
    insecure: config.getBoolean("insecure") ?? false,
    insecureSourceRegistries: config.getObject<string[]>("insecureSourceRegistries"),
    auth: config.getSecret("pullSecret"),
    lockFile: config.get("lockFile") ?? `images.${mode}.lock.json`,
    hosts: (config.getObject<string[]>("hostRoots") ?? []).map((root) => ({ target: { local: { root } } })),
});

export const images = microshift.images;
export const destination = microshift.destination;
export const hostFiles = pulumi.all(microshift.hosts.map((h) => h.files));
