import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describeAptResult, makeAptClient } from "../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import { createProgramStack, errorDiagnostics, packageRoot, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";

/**
 * examples/mini-mirror with `serve: false` (no Docker provider here), run with the real CLI: a
 * mini-mirror `sources/` tree whose two sources share the `debian` prefix (bookworm and
 * bookworm-updates of a local upstream, keys by file:// key URL) is published, signed, under
 * the publish root; apt-get installs from both suites through a plain HTTP server of that root.
 * A packages.txt line that does not parse stops the preview naming the file and line, with
 * nothing written.
 */

const example = path.join(packageRoot, "examples", "mini-mirror");

describe("examples/mini-mirror (serve: false) with the real Pulumi CLI", function () {
    this.timeout(900_000);

    let release: AptRepo;
    let updates: AptRepo;
    let upstream: StaticServer;
    let signing: GpgKeyring;
    let publishRoot: string;
    let served: StaticServer;
    let sources: string;
    let lockDir: string;
    let t: ProgramStack;
    const timings: Record<string, number> = {};
    const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        try {
            return await f();
        } finally {
            timings[what] = Date.now() - t0;
        }
    };

    before(async () => {
        const upstreamDir = await makeTempDir("mm-upstream");
        release = await buildRepo({
            dir: upstreamDir,
            distribution: "bookworm",
            components: {
                main: [
                    { name: "app", version: "1.0-1", depends: "libapp1" },
                    { name: "libapp1", version: "1.0-1" },
                    { name: "other", version: "2.0-1" },
                ],
            },
        });
        updates = await buildRepo({
            dir: upstreamDir,
            distribution: "bookworm-updates",
            keyring: release.keyring,
            components: { main: [{ name: "tool", version: "3.1-1" }] },
        });
        upstream = await startStaticServer(upstreamDir);
        signing = await makeGpgKeyring(["rsa"]);
        const work = await makeTempDir("mm-example");
        const keyFile = path.join(work, "upstream.asc");
        fs.writeFileSync(keyFile, release.publicKeyArmored);
        sources = path.join(work, "sources");
        const write = (rel: string, text: string) => {
            fs.mkdirSync(path.dirname(path.join(sources, rel)), { recursive: true });
            fs.writeFileSync(path.join(sources, rel), text);
        };
        write("debian/bookworm/source.txt", `${upstream.url} file://${keyFile} bookworm main\n`);
        write("debian/bookworm/packages.txt", "# the nodes' packages\napp (>= 1.0\n");
        write("debian/updates/source.txt", `${upstream.url} file://${keyFile} bookworm-updates main\n`);
        write("debian/updates/packages.txt", "tool\n");
        lockDir = path.join(work, "locks");
        publishRoot = path.join(work, "srv");
        fs.mkdirSync(publishRoot);
        served = await startStaticServer(publishRoot);
        t = await createProgramStack("mini-mirror", {
            source: fs.readFileSync(path.join(example, "index.ts"), "utf8"),
            config: () => ({
                sourcesDir: sources,
                publishRoot,
                lockDir,
                serve: "false",
                signingKey: { secret: signing.keys[0]!.privateKeyArmored },
            }),
        });
        fs.copyFileSync(path.join(example, "Pulumi.yaml"), path.join(t.dir, "Pulumi.yaml"));
    });

    after(async () => {
        console.log(`      timings (ms): ${JSON.stringify(timings)}`);
        await t?.dispose();
        await Promise.all([upstream?.close(), served?.close()]);
        await release?.close();
        await updates?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("a packages.txt line that does not parse: preview fails naming the file and line, nothing is written", async () => {
        const r = await t.cli(["preview", "--non-interactive"]);
        assert.notEqual(r.code, 0);
        const file = path.join(sources, "debian/bookworm/packages.txt");
        const errors = errorDiagnostics(r).join("\n") || r.stdout + r.stderr;
        assert.match(
            errors,
            new RegExp(`MiniMirror "mini-mirror": ${file}:2: "app \\(>= 1\\.0" is not a package query`),
            t.lastOutput(),
        );
        assert.deepEqual(snapshotTree(publishRoot), {});
        assert.ok(!fs.existsSync(lockDir), "the preview made the lock directory");
    });

    it("up publishes both suites of the debian prefix, signed; apt-get installs from them", async () => {
        fs.writeFileSync(path.join(sources, "debian/bookworm/packages.txt"), "# the nodes' packages\napp (>= 1.0)\n");
        const r = await timed("up", () => t.up());
        assert.deepEqual(r.outputs.suites, ["debian/bookworm", "debian/bookworm-updates"]);
        assert.deepEqual(r.outputs.packages, {
            "debian/bookworm": { "app/amd64": "1.0-1", "libapp1/amd64": "1.0-1" },
            "debian/bookworm-updates": { "tool/amd64": "3.1-1" },
        });
        assert.deepEqual(fs.readdirSync(lockDir).sort(), [
            "debian_bookworm-updates.lock.json",
            "debian_bookworm.lock.json",
        ]);
        assert.deepEqual(r.outputs.aptLines, [
            "deb http://{host}:8888/debian bookworm main",
            "deb http://{host}:8888/debian bookworm-updates main",
        ]);
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${served.url}/debian`,
                    suites: ["bookworm", "bookworm-updates"],
                    components: ["main"],
                    signedBy: r.outputs.publicKey as string,
                },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            const install = await client.installDownloadOnly(["app", "tool"]);
            assert.ok(install.ok, describeAptResult("apt-get install", install));
            assert.deepEqual(install.files.map((f) => path.basename(f)).sort(), [
                "app_1.0-1_amd64.deb",
                "libapp1_1.0-1_amd64.deb",
                "tool_3.1-1_amd64.deb",
            ]);
            const other = await client.run("apt-get", ["install", "--download-only", "-y", "other"]);
            assert.ok(!other.ok, "a package the sources do not list is in the mirror");
        } finally {
            await client.close();
        }
    });

    it("preview --expect-no-changes passes; destroy removes the prefix", async () => {
        await timed("preview", () => t.preview({ expectNoChanges: true }));
        await timed("destroy", () => t.destroy());
        assert.ok(!fs.existsSync(path.join(publishRoot, "debian")), "the debian prefix is still there");
    });
});
