import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { syncMirror } from "../../../provider/apt/mirror";
import { digestOf } from "../../../provider/oci/digest";
import { buildMirrorVm, type MirrorVmState } from "../../../provider/vm/mirror";
import type { AptClient } from "../../harness/fixtures/aptget";
import { aptInstallsFrom, type OnePackageSite, onePackageSite } from "../../harness/fixtures/aptsite";
import { debianVmBase, type VmBase } from "../../harness/fixtures/vmbase";
import { run } from "../../harness/servers/process";
import { bootVm, type RunningVm, waitForHttp } from "../../harness/servers/vm";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout, skopeo, skopeoRaw } from "../oci/registry_helpers";

/**
 * The mirror VM as a site boots it: the image MirrorVM builds on a Debian cloud-style base
 * (debootstrap of the machine's archive, with cloud-init, nginx-light and docker-registry) boots
 * in QEMU (KVM where it is hardware-assisted, else TCG: see `vmAccel`); cloud-init finds the seed partition, mounts the data partition and starts the
 * services; from the host, through forwarded ports, apt-get installs from the APT port, skopeo
 * reads the image by digest from the registry port, git clones from the git port, and a plain
 * file comes from the files port.
 */
describe("MirrorVM image booted in QEMU serves APT, registry, git and files to the host", function () {
    this.timeout(45 * 60_000);

    let base: VmBase;
    let site: OnePackageSite;
    let state: MirrorVmState;
    let vm: RunningVm | undefined;
    let gitSource: string;
    let indexDigest: string;
    const ref = "quay.io/site/multi:m1";

    before(async function () {
        const t0 = Date.now();
        const made = await debianVmBase();
        if (typeof made === "string") {
            console.log(`      skipped: the VM base image cannot be made: ${made}`);
            this.skip();
        }
        base = made as VmBase;
        console.log(`      base image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

        site = await onePackageSite();
        const root = await makeTempDir("vmboot-apt");
        await syncMirror(await site.spec(root));
        const layout = await multiArchLayout("m1");
        const layoutDir = layout.reference.slice("oci:".length, -":m1".length);
        indexDigest = JSON.parse(fs.readFileSync(path.join(layoutDir, "index.json"), "utf8")).manifests[0].digest;
        const files = await makeTempDir("vmboot-files");
        fs.mkdirSync(path.join(files, "qcow"));
        fs.writeFileSync(path.join(files, "qcow", "cirros.img"), Buffer.alloc(100_000, 9));
        const checkout = await makeTempDir("vmboot-model");
        await run("git", ["init", "-q", "-b", "master", checkout]);
        fs.writeFileSync(path.join(checkout, "cluster.yml"), "classes: [cluster.mcp]\n");
        const who = ["-c", "user.name=site", "-c", "user.email=site@example.invalid"];
        await run("git", [...who, "-C", checkout, "add", "."]);
        await run("git", [...who, "-C", checkout, "commit", "-qm", "model"]);
        gitSource = path.join(await makeTempDir("vmboot-git"), "model.git");
        await run("git", ["clone", "-q", "--bare", checkout, gitSource]);

        const out = await makeTempDir("vmboot-out");
        const t1 = Date.now();
        state = await buildMirrorVm(
            {
                name: "apt01",
                output: path.join(out, "mirror.qcow2"),
                apt: [
                    {
                        root,
                        prefix: "debian",
                        distribution: "bookworm",
                        publicKey: site.signing.keys[0]!.publicKeyArmored,
                    },
                ],
                images: [{ images: { [ref]: indexDigest }, mirrored: { [ref]: `oci:${layoutDir}:m1@${indexDigest}` } }],
                files: [{ source: files, path: "images" }],
                git: [{ source: gitSource, path: "model.git" }],
                baseImage: base.image,
            },
            { log: () => {} },
        );
        console.log(
            `      MirrorVM image built in ${((Date.now() - t1) / 1000).toFixed(1)} s: ${(state.actualSizeBytes / 1048576).toFixed(0)} MiB on disk, ${(state.virtualSizeBytes / 1048576).toFixed(0)} MiB virtual`,
        );
    });

    after(async () => {
        await vm?.close();
        await site?.close();
        await cleanupAll();
    });

    it("boots, and serves the four services on their ports", async () => {
        const t0 = Date.now();
        vm = await bootVm({ disk: state.path, base, forwards: [80, 5000, 8088, 8078], memoryMiB: 1024 });
        const port = (guest: number) => vm!.ports[guest]!;
        // The files port answers once cloud-init has mounted the data and started nginx.
        const file = await waitForHttp(`http://127.0.0.1:${port(8078)}/images/qcow/cirros.img`, 10 * 60_000, {
            vm,
            until: (a) => a.status === 200,
        });
        assert.equal(file.body.length, 100_000);
        await waitForHttp(`http://127.0.0.1:${port(5000)}/v2/`, 120_000, { vm, until: (a) => a.status === 200 });
        console.log(`      boot to serving: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

        const clients: AptClient[] = [];
        try {
            const files = await aptInstallsFrom(
                clients,
                {
                    uri: `http://127.0.0.1:${port(80)}/debian`,
                    suite: "bookworm",
                    signedBy: site.signing.keys[0]!.publicKeyArmored,
                },
                "app",
            );
            assert.ok(
                files.some((f) => /^app_1\.0-1_/.test(f)),
                `${files.join(", ")}\n${vm.consoleTail()}`,
            );
        } finally {
            for (const c of clients) await c.close();
        }

        const repo = `127.0.0.1:${port(5000)}/quay.io/site/multi`;
        assert.equal(digestOf(await skopeoRaw(`docker://${repo}@${indexDigest}`)), indexDigest);
        assert.equal(digestOf(await skopeoRaw(`docker://${repo}:m1`)), indexDigest);
        const copy = await makeTempDir("vmboot-copy");
        await skopeo(["copy", "--src-tls-verify=false", `docker://${repo}@${indexDigest}`, `dir:${copy}/x`]);

        const clone = path.join(await makeTempDir("vmboot-clone"), "model");
        await run("git", ["clone", "-q", `http://127.0.0.1:${port(8088)}/model.git`, clone]);
        assert.equal(fs.readFileSync(path.join(clone, "cluster.yml"), "utf8"), "classes: [cluster.mcp]\n");
        const want = (await run("git", ["--git-dir", gitSource, "rev-parse", "HEAD"])).stdout.trim();
        assert.equal((await run("git", ["-C", clone, "rev-parse", "HEAD"])).stdout.trim(), want);
    });
});
