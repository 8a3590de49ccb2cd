/**
 * The files HostMirrorConfig renders for each container runtime, judged by the runtime itself
 * pulling through the mirror: an image is pushed to a local docker-registry under the mirror's
 * names, and each client is asked for it by its upstream name (quay.io/…, docker.io/library/…),
 * whose real registry is unreachable here. The registry's access log shows which requests reached it.
 * containerd and dockerd run as root, each with private root, state and socket under a temp dir,
 * started and stopped by the test.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { type HostMirrorState, operations } from "../../../provider/host/operations";
import type { HostMirrorSpec } from "../../../provider/host/types";
import { makeAptClient } from "../../harness/fixtures/aptget";
import { buildRepo } from "../../harness/fixtures/aptrepo";
import { makeOciImage, type OciImage } from "../../harness/fixtures/oci";
import { startDockerd } from "../../harness/servers/dockerd";
import { startStaticServer } from "../../harness/servers/http";
import { type ManagedProcess, run, startProcess, waitUntil } from "../../harness/servers/process";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

/** Applies the configuration with the provider's own operation (local target); returns the paths written. */
async function writeConfiguration(spec: HostMirrorSpec): Promise<{ paths: string[]; state: HostMirrorState }> {
    const { outs } = await operations.create(spec);
    return { paths: (outs.records ?? []).map((r) => r.path), state: outs };
}

function have(cmd: string): boolean {
    return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Request lines (method and path) the registry logged since `from` characters of its log. */
function requests(registry: RegistryServer, from: number): string[] {
    const lines = registry.log().slice(from).split("\n");
    return lines.flatMap((l) => {
        const m = /http\.request\.method="?(\w+)"?.*http\.request\.uri="([^"]+)"/.exec(l);
        return m ? [`${m[1]} ${m[2]}`] : [];
    });
}

async function pushImage(image: OciImage, registry: RegistryServer, repository: string): Promise<void> {
    await run("skopeo", [
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        image.reference,
        `docker://${registry.host}/${repository}`,
    ]);
}

describe("HostMirrorConfig files judged by the container runtimes pulling through the mirror", function () {
    this.timeout(600_000);
    let registry: RegistryServer;
    let image: OciImage;
    let root: string;
    const timings: Record<string, number> = {};

    before(async () => {
        registry = await startRegistry();
        image = await makeOciImage({ tag: "1.0", files: { "hello.txt": "through the mirror\n" } });
        // Under the names the configuration maps the upstream names to.
        await pushImage(image, registry, "quay/airgap/app:1.0");
        await pushImage(image, registry, "library/hello:1.0");
    });

    after(async () => {
        await registry?.stop();
        await image?.close();
        for (const [what, ms] of Object.entries(timings)) {
            console.log(`      ${what}: ${ms} ms`);
        }
    });

    beforeEach(async () => {
        root = await makeTempDir("host-rt");
    });
    afterEach(async () => {
        await removeTempDir(root);
    });

    const spec = (extra: Partial<HostMirrorSpec>): HostMirrorSpec => ({
        name: "site",
        target: { local: { root } },
        registries: [
            { source: "quay.io", mirrors: [`${registry.host}/quay`], insecure: true },
            { source: "docker.io", mirrors: [registry.host], insecure: true, mirrorByDigestOnly: false },
        ],
        ...extra,
    });

    it("skopeo pulls quay.io/…@digest through the registries.conf drop-in; by tag it is refused", async () => {
        const started = Date.now();
        await writeConfiguration(spec({}));
        const conf = path.join(root, "etc/containers/registries.conf.d/site.conf");
        const skopeo = (ref: string) =>
            run("skopeo", ["--registries-conf", conf, "inspect", "--raw", "--retry-times", "0", ref], {
                check: false,
                timeoutMs: 120_000,
            });
        const mark = registry.log().length;
        const byDigest = await skopeo(`docker://quay.io/airgap/app@${image.top.digest}`);
        assert.equal(byDigest.code, 0, byDigest.stderr);
        assert.ok(requests(registry, mark).includes(`GET /v2/quay/airgap/app/manifests/${image.top.digest}`));

        const markTag = registry.log().length;
        const byTag = await skopeo("docker://quay.io/airgap/app:1.0");
        assert.notEqual(byTag.code, 0, "mirror-by-digest-only must keep tags away from the mirror");
        assert.deepEqual(requests(registry, markTag), []);
        timings.skopeo = Date.now() - started;
    });

    it("containerd (ctr --hosts-dir) fetches quay.io/…@digest from the mirror the hosts.toml names", async function () {
        if (!have("containerd") || !have("ctr")) {
            this.skip();
        }
        const started = Date.now();
        await writeConfiguration(spec({ containerd: true }));
        const hostsDir = path.join(root, "etc/containerd/certs.d");
        assert.ok(fs.existsSync(path.join(hostsDir, "quay.io/hosts.toml")));

        const daemon = await startContainerd();
        timings["containerd startup"] = Date.now() - started;
        try {
            const ctr = (args: string[]) =>
                run("ctr", ["--address", daemon.socket, ...args], { check: false, timeoutMs: 180_000 });
            const mark = registry.log().length;
            const fetched = await ctr([
                "content",
                "fetch",
                "--hosts-dir",
                hostsDir,
                `quay.io/airgap/app@${image.top.digest}`,
            ]);
            assert.equal(fetched.code, 0, fetched.stdout + fetched.stderr + daemon.process.log().slice(-3000));
            const seen = requests(registry, mark);
            assert.ok(
                seen.some(
                    (r) =>
                        r.startsWith(`GET /v2/quay/airgap/app/blobs/${image.manifests[0]!.digest}`) ||
                        r.includes("/v2/quay/airgap/app/manifests/"),
                ),
                seen.join("\n"),
            );
            // Every blob of the image is in containerd's content store now.
            const listed = await ctr(["content", "ls", "-q"]);
            for (const blob of image.blobs) {
                assert.ok(listed.stdout.includes(blob.digest), `${blob.digest} missing from\n${listed.stdout}`);
            }

            const markTag = registry.log().length;
            const byTag = await ctr(["content", "fetch", "--hosts-dir", hostsDir, "quay.io/airgap/app:1.0"]);
            assert.notEqual(byTag.code, 0, "a tag is resolved by quay.io itself, never by a digest-only mirror");
            assert.deepEqual(requests(registry, markTag), []);

            // The catch-all: no entry for quay.io, only containerd's _default mirror.
            const other = await makeTempDir("host-rt-default");
            try {
                await writeConfiguration({
                    name: "site",
                    target: { local: { root: other } },
                    containerd: { defaultMirror: [`${registry.host}/quay`], insecure: true },
                });
                const defaults = path.join(other, "etc/containerd/certs.d");
                assert.deepEqual(fs.readdirSync(defaults), ["_default"]);
                const markDefault = registry.log().length;
                const viaDefault = await ctr([
                    "content",
                    "fetch",
                    "--hosts-dir",
                    defaults,
                    `quay.io/airgap/app@${image.top.digest}`,
                ]);
                assert.equal(viaDefault.code, 0, viaDefault.stdout + viaDefault.stderr);
                assert.ok(
                    requests(registry, markDefault).some((r) =>
                        r.includes(`/v2/quay/airgap/app/manifests/${image.top.digest}?ns=quay.io`),
                    ),
                    requests(registry, markDefault).join("\n"),
                );
            } finally {
                await removeTempDir(other);
            }
        } finally {
            await daemon.stop();
        }
        timings.containerd = Date.now() - started;
    });

    it("containerd verifies a TLS mirror with the CA file the hosts.toml names", async function () {
        if (!have("containerd") || !have("ctr") || spawnSync("unshare", ["-m", "true"]).status !== 0) {
            this.skip();
        }
        const started = Date.now();
        const secure = await startRegistry({ tls: true });
        try {
            await run("skopeo", [
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-cert-dir",
                secure.certDir!,
                image.reference,
                `docker://${secure.host}/quay/airgap/app:1.0`,
            ]);
            await writeConfiguration({
                name: "site",
                target: { local: { root } },
                registries: [{ source: "quay.io", mirrors: [`${secure.host}/quay`] }],
                caCertificates: [{ name: "mirror-ca", pem: secure.caCertPem! }],
                containerd: true,
            });
            const hostsDir = path.join(root, "etc/containerd/certs.d");
            assert.match(
                fs.readFileSync(path.join(hostsDir, "quay.io/hosts.toml"), "utf8"),
                /^ {2}ca = \["\/usr\/local\/share\/ca-certificates\/mirror-ca\.crt"\]$/m,
            );
            const daemon = await startContainerd();
            try {
                // ctr reads the hosts.toml and the CA file itself: a private mount namespace puts the
                // written CA directory where the hosts.toml says, without changing the machine.
                const ctr = (caDir: string) =>
                    run(
                        "unshare",
                        [
                            "-m",
                            "sh",
                            "-c",
                            'mount --bind "$0" /usr/local/share/ca-certificates && exec "$@"',
                            caDir,
                            "ctr",
                            "--address",
                            daemon.socket,
                            "content",
                            "fetch",
                            "--hosts-dir",
                            hostsDir,
                            `quay.io/airgap/app@${image.top.digest}`,
                        ],
                        { check: false, timeoutMs: 180_000 },
                    );
                // Without the CA the mirror's certificate is refused (and quay.io is unreachable).
                const emptyCaDir = await makeTempDir("no-ca");
                try {
                    const refused = await ctr(emptyCaDir);
                    assert.notEqual(refused.code, 0, refused.stdout);
                } finally {
                    await removeTempDir(emptyCaDir);
                }
                const mark = secure.log().length;
                const fetched = await ctr(path.join(root, "usr/local/share/ca-certificates"));
                assert.equal(fetched.code, 0, fetched.stdout + fetched.stderr);
                assert.ok(
                    requests(secure, mark).some((r) => r.includes("/v2/quay/airgap/app/")),
                    requests(secure, mark).join("\n"),
                );
            } finally {
                await daemon.stop();
            }
        } finally {
            await secure.stop();
        }
        timings["containerd, TLS mirror with ca"] = Date.now() - started;
    });

    it("dockerd pulls docker.io/library/… from registry-mirrors merged into daemon.json, other keys kept", async function () {
        if (!have("dockerd")) {
            this.skip();
        }
        const started = Date.now();
        const daemonJson = path.join(root, "etc/docker/daemon.json");
        fs.mkdirSync(path.dirname(daemonJson), { recursive: true });
        const before = '{\n\t"debug": true,\n\t"labels": ["airgap.test=kept"],\n\t"features": {"buildkit": false}\n}\n';
        fs.writeFileSync(daemonJson, before);
        const { state } = await writeConfiguration(spec({ docker: true }));
        const after = fs.readFileSync(daemonJson, "utf8");
        assert.ok(after.startsWith(before.slice(0, before.lastIndexOf("}") - 1)), after);
        assert.deepEqual(JSON.parse(after), {
            debug: true,
            labels: ["airgap.test=kept"],
            features: { buildkit: false },
            "registry-mirrors": [`http://${registry.host}`],
            "insecure-registries": [registry.host],
        });

        const daemon = await startDockerd({ configFile: daemonJson });
        timings["dockerd startup"] = Date.now() - started;
        try {
            const docker = (args: string[]) => daemon.docker(args, { check: false, timeoutMs: 180_000 });
            const info = await docker([
                "info",
                "--format",
                "{{json .RegistryConfig.Mirrors}} {{.Debug}} {{json .Labels}}",
            ]);
            assert.equal(
                info.stdout.trim(),
                `["http://${registry.host}/"] true ["airgap.test=kept"]`,
                info.stdout + info.stderr,
            );
            const mark = registry.log().length;
            const pulled = await docker(["pull", "docker.io/library/hello:1.0"]);
            assert.equal(pulled.code, 0, pulled.stdout + pulled.stderr + daemon.process.log().slice(-3000));
            assert.ok(
                requests(registry, mark).some((r) => r.includes("/v2/library/hello/manifests/")),
                requests(registry, mark).join("\n"),
            );
            const id = await docker(["image", "inspect", "--format", "{{.Id}}", "hello:1.0"]);
            assert.equal(id.code, 0, id.stderr);
        } finally {
            await daemon.stop();
        }
        timings.dockerd = Date.now() - started;
        // Nothing to do on the next run; an update renders the merged file to itself.
        const id = `${root}#site`;
        const read = await operations.read(id, state);
        assert.equal((await operations.diff(id, read.props, spec({ docker: true }))).changes, false);
        await operations.update(id, state, spec({ docker: true }));
        assert.equal(fs.readFileSync(daemonJson, "utf8"), after);
        // Destroy puts the host's daemon.json back byte for byte.
        await operations.delete(id, state);
        assert.equal(fs.readFileSync(daemonJson, "utf8"), before);
    });
});

describe("HostMirrorConfig aptDisableOtherSources judged by apt-get", function () {
    this.timeout(300_000);

    it("apt-get update with the written tree as Dir::Etc reads only the configuration's source", async function () {
        if (spawnSync("unshare", ["-m", "true"]).status !== 0) {
            // Signed-By names /etc/apt/keyrings/<name>.asc: a private mount namespace puts the
            // written keyrings there without changing the machine.
            this.skip();
        }
        const started = Date.now();
        const ours = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "hello-airgap", version: "1.0-1" }] },
            signWith: "ed25519",
        });
        const other = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "other-airgap", version: "2.0-1" }] },
            signWith: "ed25519",
        });
        const oursServer = await startStaticServer(ours.dir);
        const otherServer = await startStaticServer(other.dir);
        const root = await makeTempDir("host-aptoff");
        const client = await makeAptClient({ sources: [] });
        try {
            // The host's own sources, in both formats, signed by a key of its own.
            const etc = path.join(root, "etc/apt");
            fs.mkdirSync(path.join(etc, "sources.list.d"), { recursive: true });
            fs.mkdirSync(path.join(etc, "keyrings"), { recursive: true });
            fs.writeFileSync(path.join(etc, "keyrings/host.asc"), other.publicKeyArmored);
            const sourcesList = `# the host's archive\ndeb [signed-by=/etc/apt/keyrings/host.asc] ${otherServer.url} bookworm main\n`;
            fs.writeFileSync(path.join(etc, "sources.list"), sourcesList);
            fs.writeFileSync(
                path.join(etc, "sources.list.d/host.sources"),
                `Types: deb\nURIs: ${otherServer.url}/\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/host.asc\n`,
            );
            const apt = (args: string[]) =>
                run(
                    "unshare",
                    [
                        "-m",
                        "sh",
                        "-c",
                        'mount --bind "$0" /etc/apt/keyrings && exec "$@"',
                        path.join(etc, "keyrings"),
                        ...args,
                        "-o",
                        `Dir::Etc=${etc}/`,
                    ],
                    {
                        env: { ...process.env, APT_CONFIG: client.configPath, LC_ALL: "C" },
                        timeoutMs: 120_000,
                        check: false,
                    },
                );

            // Before: the host's sources are read (the test can tell them apart from ours).
            const before = await apt(["apt-get", "update"]);
            assert.equal(before.code, 0, before.stdout + before.stderr);
            assert.ok((before.stdout + before.stderr).includes(otherServer.url), before.stdout);

            const { paths: written, state } = await writeConfiguration({
                name: "site",
                target: { local: { root } },
                aptDisableOtherSources: true,
                apt: [
                    {
                        name: "site-debian",
                        uris: [oursServer.url],
                        suites: ["bookworm"],
                        components: ["main"],
                        signedBy: ours.publicKeyArmored,
                    },
                ],
            });
            assert.deepEqual(written, [
                "etc/apt/keyrings/site-debian.asc",
                "etc/apt/sources.list.d/site-debian.sources",
                "etc/apt/sources.list",
                "etc/apt/sources.list.d/host.sources",
            ]);

            const update = await apt(["apt-get", "update"]);
            const said = update.stdout + update.stderr;
            assert.equal(update.code, 0, said);
            assert.doesNotMatch(said, /^(Err|W|E):/m, said);
            assert.match(said, new RegExp(`^Get:\\d+ ${oursServer.url} bookworm InRelease`, "m"), said);
            assert.ok(!said.includes(otherServer.url), `the disabled sources were read:\n${said}`);
            const policy = await apt(["apt-cache", "policy", "hello-airgap", "other-airgap"]);
            assert.match(policy.stdout, /hello-airgap:\n\s+Installed: \(none\)\n\s+Candidate: 1\.0-1/, policy.stdout);
            assert.doesNotMatch(policy.stdout, /Candidate: 2\.0-1/, policy.stdout);
            // Destroy puts the host's sources back byte for byte.
            const hostSources = fs.readFileSync(path.join(etc, "sources.list.d/host.sources"), "utf8");
            assert.match(hostSources, /^Enabled: no$/m);
            const id = `${root}#site`;
            const spec2 = { ...state, files: undefined, records: undefined } as unknown as HostMirrorSpec;
            const read = await operations.read(id, state);
            assert.equal((await operations.diff(id, read.props, spec2)).changes, false);
            const updated = await operations.update(id, state, spec2);
            assert.equal(fs.readFileSync(path.join(etc, "sources.list.d/host.sources"), "utf8"), hostSources);
            await operations.delete(id, updated.outs ?? state);
            assert.equal(fs.readFileSync(path.join(etc, "sources.list"), "utf8"), sourcesList);
            assert.doesNotMatch(fs.readFileSync(path.join(etc, "sources.list.d/host.sources"), "utf8"), /Enabled/);
            assert.ok(!fs.existsSync(path.join(etc, "sources.list.d/site-debian.sources")));
            console.log(`      apt-get (disable other sources): ${Date.now() - started} ms`);
        } finally {
            await client.close();
            await oursServer.close();
            await otherServer.close();
            await ours.close();
            await other.close();
            await removeTempDir(root);
        }
    });
});

describe("HostMirrorConfig pip.conf judged by pip", function () {
    this.timeout(180_000);

    it("pip downloads a package from the index pip.conf names", async function () {
        const pip = spawnSync("python3", ["-m", "pip", "--version"]);
        if (pip.status !== 0) {
            this.skip();
        }
        const started = Date.now();
        const dir = await makeTempDir("host-pip");
        // A PEP 503 simple index with one wheel, served on 127.0.0.1.
        const wheelName = "hello_airgap-1.0-py3-none-any.whl";
        const wheel = path.join(dir, wheelName);
        await run("python3", [
            "-c",
            [
                "import sys, zipfile",
                "z = zipfile.ZipFile(sys.argv[1], 'w')",
                "z.writestr('hello_airgap/__init__.py', '')",
                "z.writestr('hello_airgap-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: hello-airgap\\nVersion: 1.0\\n')",
                "z.writestr('hello_airgap-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')",
                "z.writestr('hello_airgap-1.0.dist-info/RECORD', '')",
                "z.close()",
            ].join("\n"),
            wheel,
        ]);
        const seen: string[] = [];
        const server = http.createServer((req, res) => {
            seen.push(`${req.method} ${req.url}`);
            if (req.url === "/pypi/simple/hello-airgap/") {
                res.writeHead(200, { "content-type": "text/html" });
                res.end(`<html><body><a href="/pypi/files/${wheelName}">${wheelName}</a></body></html>`);
            } else if (req.url === `/pypi/files/${wheelName}`) {
                res.writeHead(200, { "content-type": "application/octet-stream" });
                res.end(fs.readFileSync(wheel));
            } else {
                res.writeHead(404);
                res.end();
            }
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const { port } = server.address() as { port: number };
        const root = path.join(dir, "root");
        fs.mkdirSync(root);
        try {
            await writeConfiguration({
                name: "site",
                target: { local: { root } },
                pip: { indexUrl: `http://127.0.0.1:${port}/pypi/simple/`, trustedHost: `127.0.0.1:${port}` },
            });
            const env = {
                ...process.env,
                PIP_CONFIG_FILE: path.join(root, "etc/pip.conf"),
                PIP_NO_CACHE_DIR: "1",
                PIP_DISABLE_PIP_VERSION_CHECK: "1",
                NO_PROXY: "127.0.0.1",
            };
            const config = await run("python3", ["-m", "pip", "config", "list"], { env, check: false });
            assert.match(
                config.stdout,
                new RegExp(`^global\\.index-url='http://127\\.0\\.0\\.1:${port}/pypi/simple/'$`, "m"),
            );
            const downloads = path.join(dir, "downloads");
            const got = await run(
                "python3",
                ["-m", "pip", "download", "--no-deps", "--dest", downloads, "hello-airgap==1.0"],
                { env, check: false, timeoutMs: 120_000 },
            );
            assert.equal(got.code, 0, got.stdout + got.stderr);
            assert.deepEqual(fs.readdirSync(downloads), [wheelName]);
            assert.ok(seen.includes("GET /pypi/simple/hello-airgap/"), seen.join("\n"));
        } finally {
            await new Promise((resolve) => server.close(resolve));
            await removeTempDir(dir);
        }
        console.log(`      pip: ${Date.now() - started} ms`);
    });
});

describe("HostMirrorConfig with a host file it cannot merge", () => {
    it("an invalid daemon.json fails create naming the file, and nothing is written", async () => {
        const root = await makeTempDir("host-badjson");
        try {
            const daemonJson = path.join(root, "etc/docker/daemon.json");
            fs.mkdirSync(path.dirname(daemonJson), { recursive: true });
            const bad = '{\n  "debug": true,\n}\n';
            fs.writeFileSync(daemonJson, bad);
            await assert.rejects(
                operations.create({
                    name: "site",
                    target: { local: { root } },
                    registries: [{ source: "docker.io", mirrors: ["127.0.0.1:5000"], insecure: true }],
                    containerd: true,
                    docker: true,
                }),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" && err.message.includes("/etc/docker/daemon.json is not valid JSON"),
            );
            assert.equal(fs.readFileSync(daemonJson, "utf8"), bad);
            const left = fs.readdirSync(root, { recursive: true }).map(String).sort();
            assert.deepEqual(left, ["etc", "etc/docker", "etc/docker/daemon.json"]);
        } finally {
            await removeTempDir(root);
        }
    });
});

interface Daemon {
    socket: string;
    process: ManagedProcess;
    stop(): Promise<void>;
}

async function startContainerd(): Promise<Daemon> {
    const dir = await makeTempDir("ctrd");
    const socket = path.join(dir, "c.sock");
    const config = path.join(dir, "config.toml");
    fs.writeFileSync(
        config,
        [
            "version = 2",
            `root = ${JSON.stringify(path.join(dir, "root"))}`,
            `state = ${JSON.stringify(path.join(dir, "state"))}`,
            // Only the content store and what ctr needs: no CRI, no snapshotters that probe the host.
            'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
            "[grpc]",
            `  address = ${JSON.stringify(socket)}`,
            "[ttrpc]",
            `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
            '[plugins."io.containerd.internal.v1.opt"]',
            `  path = ${JSON.stringify(path.join(dir, "opt"))}`,
            "",
        ].join("\n"),
    );
    const proc = startProcess("containerd", ["--config", config], { name: "containerd" });
    const stop = async () => {
        await proc.stop(10_000);
        await removeTempDir(dir);
    };
    try {
        await waitUntil(async () => (await run("ctr", ["--address", socket, "version"], { check: false })).code === 0, {
            what: "containerd to answer on its socket",
            process: proc,
            timeoutMs: 60_000,
            intervalMs: 100,
        });
    } catch (err) {
        await stop();
        throw err;
    }
    return { socket, process: proc, stop };
}
