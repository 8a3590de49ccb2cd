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
import { type DockerEngine, dockerUnavailable, nginxRootfs, startDockerd } from "./nginxImage";

/**
 * The nginx containers DriveTrainMirrors declares (APT trees and plain files; git over HTTP),
 * taken from what the component registered under Pulumi's mocks and run exactly as declared by
 * a real Docker engine: apt-get installs through the APT port, a file comes back from the files
 * port, and git clones from the git port.
 */

type Spec = Record<string, any>;

/** `docker create` arguments for a docker.Container spec (the inputs the provider receives). */
function createArgs(spec: Spec): string[] {
    const args = ["create", "--name", spec.name];
    if (spec.networkMode !== undefined) args.push("--network", spec.networkMode);
    if (spec.restart !== undefined) args.push("--restart", spec.restart);
    for (const e of spec.envs ?? []) args.push("--env", e);
    for (const v of spec.volumes ?? []) {
        args.push("--volume", `${v.hostPath}:${v.containerPath}${v.readOnly ? ":ro" : ""}`);
    }
    for (const p of spec.ports ?? []) {
        args.push("--publish", `${p.ip ?? "0.0.0.0"}:${p.external}:${p.internal}/${p.protocol ?? "tcp"}`);
    }
    args.push(spec.image, ...(spec.command ?? []));
    return args;
}

/** The uploads as one tar (paths relative to /), as the provider copies them into the container. */
async function uploadsTar(uploads: { file: string; content: string }[]): Promise<Buffer> {
    const dir = await makeTempDir("dt-uploads");
    for (const u of uploads) {
        const target = path.join(dir, u.file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, u.content, { mode: 0o644 });
    }
    const tar = await run("tar", ["-C", dir, "--owner=0", "--group=0", "-c", ...uploads.map((u) => u.file.slice(1))]);
    return tar.stdoutBytes;
}

describe("DriveTrainMirrors' nginx containers run by a real dockerd", function () {
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
});
