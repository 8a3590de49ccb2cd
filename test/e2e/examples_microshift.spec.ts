import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createProgramStack, errorDiagnostics, packageRoot, type ProgramStack } from "../harness/program";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";
import { multiArchLayout, singleLayout, skopeo } from "../integration/oci/registry_helpers";

/**
 * examples/microshift-airgap run the way its README says, with the real CLI from the example's
 * directory contents: a `connected` stack writes the release's images to an OCI archive in a
 * transfer directory, a `disconnected` stack (another state backend: the other side of the air
 * gap) uploads the archive to the site registry over TLS with the registry's CA and configures
 * a host root. Judged by skopeo (digests at the site) and by the files the host got.
 */

const example = path.join(packageRoot, "examples", "microshift-airgap");
const PROJECT = "microshift-airgap";
const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

describe("examples/microshift-airgap: connected and disconnected stacks with the real Pulumi CLI", function () {
    this.timeout(900_000);

    let source: RegistryServer;
    let site: RegistryServer;
    let transfer: string;
    let hostRoot: string;
    let hostBefore: Record<string, string>;
    let releaseFile: string;
    let connected: ProgramStack;
    let disconnected: ProgramStack;
    /** Release component → reference, its digest, and where the site serves it. */
    const release: Record<string, { ref: string; digest: string; atSite: string }> = {};
    const archive = () => path.join(transfer, "microshift-images.tar");
    const timings: Record<string, number> = {};
    const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        try {
            return await f();
        } finally {
            timings[what] = Date.now() - t0;
        }
    };

    const digestAt = async (ref: string, extra: string[] = []) =>
        `sha256:${sha256((await skopeo(["inspect", "--raw", ...extra, ref])).stdoutBytes)}`;

    before(async () => {
        [source, site] = await Promise.all([startRegistry(), startRegistry({ tls: true })]);
        const push = (from: string, to: string) =>
            skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", from, `docker://${to}`]);
        const ovn = `${source.host}/openshift-release-dev/ovn-kubernetes-microshift:4.18.1`;
        await push(await singleLayout("v1", 3000, 7), ovn);
        release.ovn = {
            ref: ovn,
            digest: await digestAt(`docker://${ovn}`, ["--tls-verify=false"]),
            atSite: `${site.host}/openshift-release-dev/ovn-kubernetes-microshift:4.18.1`,
        };
        const podTag = `${source.host}/openshift-release-dev/ocp-v4.0-art-dev:pod`;
        await push((await multiArchLayout("pod", "microshift")).reference, podTag);
        const podDigest = await digestAt(`docker://${podTag}`, ["--tls-verify=false"]);
        release.pod = {
            ref: `${source.host}/openshift-release-dev/ocp-v4.0-art-dev@${podDigest}`,
            digest: podDigest,
            atSite: `${site.host}/openshift-release-dev/ocp-v4.0-art-dev@${podDigest}`,
        };
        const files = await makeTempDir("msa-files");
        releaseFile = path.join(files, "release-x86_64.json");
        fs.writeFileSync(
            releaseFile,
            JSON.stringify({
                release: { base: "4.18.1" },
                images: Object.fromEntries(Object.entries(release).map(([k, v]) => [k, v.ref])),
            }),
        );
        transfer = await makeTempDir("msa-transfer");
        hostRoot = await makeTempDir("msa-host");
        fs.mkdirSync(path.join(hostRoot, "etc/containers/registries.conf.d"), { recursive: true });
        fs.writeFileSync(
            path.join(hostRoot, "etc/containers/registries.conf"),
            'unqualified-search-registries = ["quay.io"]\n',
        );
        hostBefore = snapshotTree(hostRoot, { identity: true });

        const stack = async (config: Record<string, string>) => {
            const t = await createProgramStack(PROJECT, {
                source: fs.readFileSync(path.join(example, "index.ts"), "utf8"),
                config: () => config,
            });
            fs.copyFileSync(path.join(example, "Pulumi.yaml"), path.join(t.dir, "Pulumi.yaml"));
            return t;
        };
        connected = await stack({
            mode: "connected",
            releaseFile,
            archive: archive(),
            insecureSourceRegistries: JSON.stringify([source.host]),
        });
        disconnected = await stack({
            mode: "disconnected",
            releaseFile,
            archive: archive(),
            registry: site.host,
            caFile: site.caCertPath!,
            hostRoots: JSON.stringify([hostRoot]),
        });
    });

    after(async () => {
        console.log(`      timings (ms): ${JSON.stringify(timings)}`);
        await disconnected?.dispose();
        await connected?.dispose();
        await Promise.all([source?.stop(), site?.stop()]);
        await cleanupAll();
    });

    it("the disconnected stack before the archive is carried in: preview fails naming archive, nothing changes", async () => {
        const r = await disconnected.cli(["preview", "--non-interactive"]);
        assert.notEqual(r.code, 0);
        const errors = errorDiagnostics(r).join("\n") || r.stdout + r.stderr;
        assert.match(
            errors,
            new RegExp(
                `MicroShiftAirgap "microshift": archive: ${archive()} is not there: run the connected stack first`,
            ),
            disconnected.lastOutput(),
        );
        assert.deepEqual(snapshotTree(hostRoot, { identity: true }), hostBefore);
        assert.deepEqual(fs.readdirSync(transfer), []);
    });

    it("connected: up writes the release's images to the archive; preview --expect-no-changes passes", async () => {
        const r = await timed("connected up", () => connected.up());
        const created = r.steps
            .filter((s) => s.op === "create" && !s.type.startsWith("pulumi:"))
            .map((s) => `${s.type} ${s.urn.slice(s.urn.lastIndexOf("::") + 2)}`)
            .sort();
        assert.deepEqual(
            created,
            [
                "airgap:components:MicroShiftAirgap microshift",
                "pulumi-nodejs:dynamic/airgap:ImageMirror microshift-images",
            ],
            connected.lastOutput(),
        );
        assert.deepEqual(r.outputs.images, Object.fromEntries(Object.values(release).map((i) => [i.ref, i.digest])));
        assert.equal(r.outputs.destination, `oci-archive:${archive()}`);
        assert.deepEqual(r.outputs.hostFiles, []);
        assert.ok(fs.statSync(archive()).size > 3000);
        assert.ok(fs.existsSync(path.join(connected.dir, "images.connected.lock.json")), "no lock file");
        await timed("connected preview", () => connected.preview({ expectNoChanges: true }));
    });

    it("disconnected: up uploads the archive to the site registry over TLS and gives the host 999-microshift-mirror and the CA", async () => {
        const r = await timed("disconnected up", () => disconnected.up());
        assert.deepEqual(r.outputs.images, Object.fromEntries(Object.values(release).map((i) => [i.ref, i.digest])));
        assert.equal(r.outputs.destination, `docker://${site.host}`);
        for (const image of Object.values(release)) {
            assert.equal(
                await digestAt(`docker://${image.atSite}`, ["--cert-dir", site.certDir!]),
                image.digest,
                image.atSite,
            );
        }
        const [files] = r.outputs.hostFiles as Record<string, string>[];
        assert.deepEqual(Object.keys(files!).sort(), [
            "etc/containers/registries.conf.d/999-microshift-mirror.conf",
            "etc/pki/ca-trust/source/anchors/microshift-mirror-ca.crt",
        ]);
        for (const [file, digest] of Object.entries(files!)) {
            assert.equal(sha256(fs.readFileSync(path.join(hostRoot, file))), digest, file);
        }
        assert.equal(
            fs
                .readFileSync(path.join(hostRoot, "etc/pki/ca-trust/source/anchors/microshift-mirror-ca.crt"), "utf8")
                .trim(),
            site.caCertPem!.trim(),
        );
        const conf = fs.readFileSync(
            path.join(hostRoot, "etc/containers/registries.conf.d/999-microshift-mirror.conf"),
            "utf8",
        );
        assert.match(conf, new RegExp(`^location = "${source.host}"$`, "m"), conf);
        assert.match(conf, new RegExp(`\\[\\[registry\\.mirror\\]\\]\\nlocation = "${site.host}"\\n`), conf);
        assert.match(conf, /^mirror-by-digest-only = true$/m, conf);
        assert.doesNotMatch(conf, /insecure = true/, conf);
        // The host's configuration, as skopeo reads it: the release's digest reference by its
        // source name is pulled from the site registry, with the source registry stopped.
        await source.stop();
        const regConf = path.join(await makeTempDir("msa-regconf"), "registries.conf");
        fs.writeFileSync(regConf, conf);
        const pod = release.pod!;
        const raw = await skopeo([
            "--registries-conf",
            regConf,
            "inspect",
            "--raw",
            "--retry-times",
            "0",
            "--cert-dir",
            site.certDir!,
            `docker://${pod.ref}`,
        ]);
        assert.equal(`sha256:${sha256(raw.stdoutBytes)}`, pod.digest);
        await timed("disconnected preview", () => disconnected.preview({ expectNoChanges: true }));
    });

    it("destroy: the host is as before, the images leave the site registry, the archive is removed", async () => {
        await timed("disconnected destroy", () => disconnected.destroy());
        assert.deepEqual(snapshotTree(hostRoot, { identity: true }), hostBefore);
        for (const image of Object.values(release)) {
            const got = await skopeo(
                ["inspect", "--raw", "--cert-dir", site.certDir!, `docker://${image.atSite}`],
                false,
            );
            assert.notEqual(got.code, 0, `${image.atSite} is still served`);
        }
        await timed("connected destroy", () => connected.destroy());
        assert.ok(!fs.existsSync(archive()), "the archive is still there");
    });
});
