import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { syncMirror } from "../../../provider/apt/mirror";
import { MiniMirror } from "../../../sdk/components/miniMirror";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type OnePackageSite, onePackageSite } from "../../harness/fixtures/aptsite";
import { freePort, waitUntil } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { installMocks, type Recorder } from "../../unit/components/mocks";
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
 * The nginx container MiniMirror declares, run exactly as declared by a real Docker engine:
 * the container spec is taken from what the component registered (under Pulumi's mocks, since
 * the Docker provider plugin cannot be installed here), created with the same name, image,
 * command, volume, network mode, restart policy and labels, its uploaded configuration copied
 * in as the provider does, and started. It serves a publish root an AptMirror engine run
 * produced, and apt-get, with signature checking, installs from it through the container's port.
 */

type Spec = ContainerSpec;

describe("MiniMirror's nginx container run by a real dockerd", function () {
    this.timeout(1_800_000);

    let engine: DockerEngine | undefined;
    let site: OnePackageSite | undefined;
    let mocks: Recorder;
    let image: string;
    let root: string;
    const timings: Record<string, number> = {};
    const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        try {
            return await f();
        } finally {
            timings[what] = Date.now() - t0;
        }
    };

    before(async function () {
        const why = dockerUnavailable();
        if (why !== undefined) {
            console.log(`      skipped: ${why}`);
            this.skip();
        }
        const rootfs = await timed("nginx rootfs (debootstrap, or the cache)", () =>
            nginxRootfs((line) => console.log(`      ${line}`)),
        );
        if (typeof rootfs === "string") {
            console.log(`      skipped: ${rootfs}`);
            this.skip();
        }
        engine = await timed("dockerd startup", () => startDockerd());
        image = `airgap-test/nginx-light:${rootfs.key}`;
        await timed("docker import", () => engine!.docker(["import", rootfs.tarball, image], { timeoutMs: 600_000 }));
        mocks = await installMocks();
        site = await onePackageSite();
        const work = await makeTempDir("mm-docker");
        root = path.join(work, "srv");
        fs.mkdirSync(root);
        // The publish root, as the AptMirror engine writes it.
        await timed("AptMirror sync", async () => syncMirror(await site!.spec(root)));
    });

    after(async () => {
        if (engine !== undefined) {
            await engine.docker(["rm", "-f", "mini-mirror-test"], { check: false });
            await engine.stop();
        }
        await site?.close();
        await cleanupAll();
        console.log(`      timings (ms): ${JSON.stringify(timings)}`);
    });

    it("the declared container serves the published suite; apt-get installs from it through the port", async () => {
        const work = await makeTempDir("mm-docker-src");
        const keyFile = path.join(work, "upstream.asc");
        fs.writeFileSync(keyFile, site!.upstream.publicKeyArmored);
        fs.mkdirSync(path.join(work, "sources/debian/app"), { recursive: true });
        fs.writeFileSync(
            path.join(work, "sources/debian/app/source.txt"),
            `${site!.server.url} file://${keyFile} bookworm main\n`,
        );
        fs.writeFileSync(path.join(work, "sources/debian/app/packages.txt"), "app\n");
        const port = await freePort();
        const mm = new MiniMirror("mini-mirror-test", {
            sourcesDir: path.join(work, "sources"),
            publishRoot: root,
            signing: { privateKey: site!.signing.keys[0]!.privateKeyArmored },
            // Containers share the host's network here (--bridge=none): nginx listens on the port itself.
            container: { image, pullImage: false, networkMode: "host", port, ip: "127.0.0.1" },
        });
        await mocks.settle([mm.container!, ...mm.mirrors]);
        const spec = mocks.get("mini-mirror-test-nginx").inputs;
        assert.equal(spec.image, image);
        assert.deepEqual(spec.volumes, [{ hostPath: root, containerPath: "/srv", readOnly: true }]);

        await engine!.docker(createArgs(spec));
        await engine!.docker(["cp", "-", `${spec.name}:/`], { input: await uploadsTar(spec.uploads) });
        await timed("container start", () => engine!.docker(["start", spec.name]));
        const inspect = JSON.parse((await engine!.docker(["inspect", spec.name])).stdout)[0];
        assert.deepEqual(inspect.Config.Cmd, spec.command);
        assert.equal(inspect.HostConfig.NetworkMode, "host");
        assert.equal(inspect.HostConfig.RestartPolicy.Name, "unless-stopped");
        assert.deepEqual(
            inspect.Mounts.map((m: Spec) => [m.Source, m.Destination, m.RW]),
            [[root, "/srv", false]],
        );
        const url = `http://127.0.0.1:${port}`;
        await waitUntil(
            async () => (await fetch(`${url}/debian/dists/bookworm/InRelease`).catch(() => undefined))?.ok ?? false,
            {
                what: "nginx in the container to serve the suite",
                timeoutMs: 30_000,
                intervalMs: 200,
            },
        ).catch(async (err) => {
            const logs = await engine!.docker(["logs", spec.name], { check: false });
            throw new Error(`${(err as Error).message}\n--- container log ---\n${logs.stdout}${logs.stderr}`);
        });

        // apt-get, with the mirror's signing key, through the container.
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${url}/debian`,
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: site!.signing.keys[0]!.publicKeyArmored,
                },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            const install = await timed("apt-get install through the container", () =>
                client.installDownloadOnly(["app"]),
            );
            assert.ok(install.ok, describeAptResult("apt-get install app", install));
            assert.deepEqual(
                install.files.map((f) => path.basename(f)),
                ["app_1.0-1_amd64.deb"],
            );
        } finally {
            await client.close();
        }
        // The container read the tree read-only: nginx could not have written into it.
        const touch = await engine!.docker(["exec", spec.name, "sh", "-c", "echo x > /srv/written"], { check: false });
        assert.notEqual(touch.code, 0, "the publish root is writable from the container");
        // It served through nginx (its access log names the requests).
        const logs = await engine!.docker(["logs", spec.name]);
        assert.match(logs.stdout + logs.stderr, /GET \/debian\/pool\/main\/.*app_1\.0-1_amd64\.deb HTTP\/1\.1" 200/);
    });
});
