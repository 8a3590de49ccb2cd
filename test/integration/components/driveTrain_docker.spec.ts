import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { syncMirror } from "../../../provider/apt/mirror";
import { DriveTrainMirrors } from "../../../sdk/components/driveTrain";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type OnePackageSite, onePackageSite } from "../../harness/fixtures/aptsite";
import { freePort, run, waitUntil } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { installMocks, type Recorder } from "../../unit/components/mocks";
import { singleLayout, skopeo, skopeoRaw } from "../oci/registry_helpers";
import { digestOf } from "../../../provider/oci/digest";
import {
    type ContainerSpec,
    createArgs,
    type DockerEngine,
    dockerUnavailable,
    nginxRootfs,
    startDockerd,
    uploadsTar,
} from "./nginxImage";

/**
 * A registry image from the machine's Debian docker-registry: the binary, the libraries it
 * loads and a configuration without authentication, imported with the binary as its command
 * (as registry:2 has one); the component's environment sets the address, storage and deletes.
 */
async function importRegistryImage(engine: DockerEngine, name: string): Promise<void> {
    const dir = await makeTempDir("dt-registry-rootfs");
    const copy = (file: string) => {
        fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
        fs.copyFileSync(file, path.join(dir, file));
        fs.chmodSync(path.join(dir, file), 0o755);
    };
    copy("/usr/bin/docker-registry");
    const ldd = await run("ldd", ["/usr/bin/docker-registry"]);
    for (const m of ldd.stdout.matchAll(/(\/\S+\.so[.\d]*)/g)) {
        copy(fs.realpathSync(m[1]!));
        if (fs.realpathSync(m[1]!) !== m[1]) {
            fs.mkdirSync(path.join(dir, path.dirname(m[1]!)), { recursive: true });
            fs.copyFileSync(fs.realpathSync(m[1]!), path.join(dir, m[1]!));
        }
    }
    fs.mkdirSync(path.join(dir, "etc/docker/registry"), { recursive: true });
    fs.mkdirSync(path.join(dir, "tmp"), { mode: 0o1777 });
    fs.writeFileSync(
        path.join(dir, "etc/docker/registry/config.yml"),
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
    );
    const tar = await run("tar", ["-C", dir, "--owner=0", "--group=0", "-c", "."]);
    await engine.docker(
        [
            "import",
            "--change",
            'CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]',
            "-",
            name,
        ],
        { input: tar.stdoutBytes },
    );
}

/**
 * The nginx containers DriveTrainMirrors declares (APT trees and plain files; git over HTTP),
 * taken from what the component registered under Pulumi's mocks and run exactly as declared by
 * a real Docker engine: apt-get installs through the APT port, a file comes back from the files
 * port, and git clones from the git port.
 */

type Spec = ContainerSpec;

describe("DriveTrainMirrors' containers run by a real dockerd", function () {
    this.timeout(1_800_000);

    let engine: DockerEngine | undefined;
    let site: OnePackageSite | undefined;
    let mocks: Recorder;
    let image: string;
    let work: string;
    const started: string[] = [];

    before(async function () {
        const why = dockerUnavailable();
        if (why !== undefined) {
            console.log(`      skipped: ${why}`);
            this.skip();
        }
        const rootfs = await nginxRootfs((line) => console.log(`      ${line}`));
        if (typeof rootfs === "string") {
            console.log(`      skipped: ${rootfs}`);
            this.skip();
        }
        engine = await startDockerd();
        image = `airgap-test/nginx-light:${rootfs.key}`;
        await engine.docker(["import", rootfs.tarball, image], { timeoutMs: 600_000 });
        mocks = await installMocks((type, inputs) =>
            type === "docker:index/remoteImage:RemoteImage" ? { imageId: inputs.name } : {},
        );
        site = await onePackageSite();
        work = await makeTempDir("dt-docker");
        // The containers' nginx workers run as nobody: the served trees are world-readable.
        fs.chmodSync(work, 0o755);
    });

    after(async () => {
        for (const name of started) {
            await engine?.docker(["rm", "-f", name], { check: false });
        }
        await engine?.stop();
        await site?.close();
        await cleanupAll();
    });

    it("serve the APT tree (apt-get installs), plain files and git (git clone) on the declared ports", async () => {
        const aptRoot = path.join(work, "apt");
        const filesRoot = path.join(work, "files");
        const gitRoot = path.join(work, "git");
        for (const d of [aptRoot, filesRoot, gitRoot]) fs.mkdirSync(d, { mode: 0o755 });
        await syncMirror(await site!.spec(aptRoot));
        fs.mkdirSync(path.join(filesRoot, "images"), { mode: 0o755 });
        fs.writeFileSync(path.join(filesRoot, "images", "cfg01.qcow2"), "qcow2 bytes\n", { mode: 0o644 });
        const src = path.join(work, "model-src");
        const git = (args: string[], cwd = work) =>
            run("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd });
        await git(["init", "-q", "-b", "master", src]);
        fs.writeFileSync(path.join(src, "README"), "cluster model\n");
        await git(["add", "README"], src);
        await git(["commit", "-q", "-m", "model"], src);
        await git(["clone", "-q", "--bare", src, path.join(gitRoot, "model.git")]);
        await git(["update-server-info"], path.join(gitRoot, "model.git"));
        await run("chmod", ["-R", "a+rX", work]);

        const ports = {
            apt: await freePort(),
            files: await freePort(),
            git: await freePort(),
            registry: await freePort(),
        };
        const dt = new DriveTrainMirrors("dtd", {
            address: "127.0.0.1",
            aptRoot,
            filesRoot,
            gitRoot,
            ports,
            // Containers share the host's network here (--bridge=none): nginx listens on the ports itself.
            networkMode: "host",
            containerImages: { nginx: image },
            nginxCommand: ["nginx", "-g", "daemon off;"],
        });
        await mocks.settle(Object.values(dt.containers));

        for (const name of ["dtd-apt-files", "dtd-git"]) {
            const spec = mocks.get(name).inputs;
            assert.equal(spec.image, image);
            await engine!.docker(createArgs(spec));
            started.push(spec.name);
            await engine!.docker(["cp", "-", `${spec.name}:/`], { input: await uploadsTar(spec.uploads) });
            await engine!.docker(["start", spec.name]);
            const inspect = JSON.parse((await engine!.docker(["inspect", spec.name])).stdout)[0];
            assert.deepEqual(inspect.Config.Cmd, ["nginx", "-g", "daemon off;"]);
            assert.equal(inspect.HostConfig.RestartPolicy.Name, "always");
            assert.ok(inspect.Mounts.every((m: Spec) => m.RW === false));
        }
        const urls = await new Promise<Record<string, string>>((resolve) => dt.urls.apply(resolve));
        await waitUntil(
            async () =>
                (await fetch(`${urls.apt}/debian/dists/bookworm/InRelease`).catch(() => undefined))?.ok ?? false,
            { what: "nginx to serve the APT tree", timeoutMs: 30_000, intervalMs: 200 },
        ).catch(async (err) => {
            const logs = await engine!.docker(["logs", "dtd-apt-files"], { check: false });
            throw new Error(`${(err as Error).message}\n--- container log ---\n${logs.stdout}${logs.stderr}`);
        });

        const client = await makeAptClient({
            sources: [
                {
                    uri: `${urls.apt}/debian`,
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: site!.signing.keys[0]!.publicKeyArmored,
                },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            const install = await client.installDownloadOnly(["app"]);
            assert.ok(install.ok, describeAptResult("apt-get install app", install));
            assert.deepEqual(
                install.files.map((f) => path.basename(f)),
                ["app_1.0-1_amd64.deb"],
            );
        } finally {
            await client.close();
        }

        assert.equal(urls.files, `http://127.0.0.1:${ports.files}`);
        const file = await fetch(`${urls.files}/images/cfg01.qcow2`);
        assert.equal(file.status, 200);
        assert.equal(await file.text(), "qcow2 bytes\n");

        const clone = path.join(work, "clone");
        await git(["clone", "-q", `${urls.git}/model.git`, clone]);
        assert.equal(fs.readFileSync(path.join(clone, "README"), "utf8"), "cluster model\n");
        const logs = await engine!.docker(["logs", "dtd-git"]);
        assert.match(logs.stdout + logs.stderr, /GET \/model\.git\/info\/refs/);
    });

    it("run the registry on the declared port with its storage on the node, deletes enabled", async () => {
        const registryImage = "airgap-test/registry:debian";
        await importRegistryImage(engine!, registryImage);
        const registryRoot = path.join(work, "registry");
        fs.mkdirSync(registryRoot);
        const port = await freePort();
        const dt = new DriveTrainMirrors("dtr", {
            address: "127.0.0.1",
            aptRoot: path.join(work, "apt"),
            registryRoot,
            ports: { registry: port },
            networkMode: "host",
            containerImages: { nginx: image, registry: registryImage },
        });
        await mocks.settle(Object.values(dt.containers));
        const spec = mocks.get("dtr-registry").inputs;
        assert.equal(spec.image, registryImage);
        await engine!.docker(createArgs(spec));
        started.push(spec.name);
        await engine!.docker(["start", spec.name]);
        const urls = await new Promise<Record<string, string>>((resolve) => dt.urls.apply(resolve));
        assert.equal(urls.registry, `127.0.0.1:${port}`);
        await waitUntil(async () => (await fetch(`http://${urls.registry}/v2/`).catch(() => undefined))?.ok ?? false, {
            what: "the registry to answer",
            timeoutMs: 30_000,
            intervalMs: 200,
        }).catch(async (err) => {
            const logs = await engine!.docker(["logs", spec.name], { check: false });
            throw new Error(`${(err as Error).message}\n--- container log ---\n${logs.stdout}${logs.stderr}`);
        });
        const ref = `docker://${urls.registry}/mirantis/salt:2019.2.0`;
        await skopeo(["copy", "--dest-tls-verify=false", await singleLayout("2019.2.0", 1500, 3), ref]);
        const digest = digestOf(await skopeoRaw(ref));
        // Stored in the node's directory, where the volume puts it.
        assert.ok(
            fs.existsSync(
                path.join(
                    registryRoot,
                    "docker/registry/v2/repositories/mirantis/salt/_manifests/revisions/sha256",
                    digest.slice(7),
                ),
            ),
        );
        // Deletes are enabled (ImageMirror removes what it pushed on destroy).
        await skopeo(["delete", "--tls-verify=false", ref]);
        assert.notEqual((await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code, 0);
    });
});
