/**
 * `withSources`: the mirror publishes the source packages of its binaries and a `Sources` index
 * in its signed Release; the judge is a real `apt-get source --download-only` through a
 * `Types: deb-src` source, and the files it fetches match the upstream ones byte for byte.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { hasCode } from "../../../provider/errors";
import { downloadDir, readMirror, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { type AptClient, describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, listFiles, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

describe("AptMirror withSources", function () {
    this.timeout(180_000);

    let upstream: AptRepo;
    let binariesOnly: AptRepo;
    let server: StaticServer;
    let binariesServer: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    const clients: AptClient[] = [];

    before(async () => {
        upstream = await buildRepo({
            distribution: "stable",
            components: {
                main: [
                    { name: "hello", version: "1.0-1", depends: "libhello1" },
                    // A binNMU: its source version is not its own (`Source: hello (1.0-1)`).
                    { name: "libhello1", version: "1.0-1+b1", extraFields: { Source: "hello (1.0-1)" } },
                    { name: "tool", version: "2.0-1", source: "toolsrc" },
                ],
            },
            sources: {
                main: [
                    { name: "hello", version: "1.0-1", binaries: ["hello", "libhello1"] },
                    { name: "toolsrc", version: "2.0-1", binaries: ["tool"] },
                    { name: "unrelated", version: "3.0-1" },
                ],
            },
        });
        binariesOnly = await buildRepo({
            distribution: "stable",
            components: { main: [{ name: "hello", version: "1.0-1" }] },
        });
        server = await startStaticServer(upstream.dir);
        binariesServer = await startStaticServer(binariesOnly.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("sources-mirror");
        mirrorServer = await startStaticServer(root);
    });
    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await server?.close();
        await binariesServer?.close();
        await upstream?.close();
        await binariesOnly?.close();
        await signing?.close();
        await cleanupAll();
    });

    const source = () => ({
        url: server.url,
        distribution: "stable",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
    });
    const upstreamFile = (sourceName: string, file: string) =>
        path.join(upstream.dir, "pool", "main", sourceName[0]!, sourceName, file);

    it("publishes the source packages of the lock; apt-get source --download-only fetches them, verified", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["hello", "tool"], withDeps: true });
        assert.deepEqual(Object.keys(lock).sort(), ["hello/amd64", "libhello1/amd64", "tool/amd64"]);
        await syncMirror({
            source: source(),
            packages: lock,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            withSources: true,
        });
        const dist = path.join(root, "debian", "dists", "stable");
        const release = fs.readFileSync(path.join(dist, "Release"), "utf8");
        for (const name of ["Sources", "Sources.gz", "Sources.xz"]) {
            assert.match(release, new RegExp(` main/source/${name.replace(".", "\\.")}$`, "m"));
        }
        const sources = fs.readFileSync(path.join(dist, "main", "source", "Sources"), "utf8");
        assert.match(sources, /^Package: hello$/m);
        assert.match(sources, /^Package: toolsrc$/m);
        assert.doesNotMatch(sources, /^Package: unrelated$/m, "only the sources of the lock's binaries");
        assert.match(sources, /^Directory: pool\/main\/h\/hello$/m);

        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/debian/`,
                    suites: ["stable"],
                    components: ["main"],
                    signedBy: signing.keys[0]!.publicKeyArmored,
                    types: ["deb", "deb-src"],
                },
            ],
        });
        clients.push(client);
        const update = await client.update();
        assert.ok(update.ok, describeAptResult("apt-get update", update));
        assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m);
        // By source name, by a binary of it, and by a binNMU whose Source names another version.
        for (const [pkg, src, version] of [
            ["hello", "hello", "1.0"],
            ["libhello1", "hello", "1.0"],
            ["tool", "toolsrc", "2.0"],
        ] as const) {
            const dir = path.join(client.root, `src-${pkg}`);
            const got = await client.sourceDownloadOnly([pkg], dir);
            assert.ok(got.ok, describeAptResult(`apt-get source --download-only ${pkg}`, got));
            assert.deepEqual(got.files, [
                `${src}_${version}-1.debian.tar.xz`,
                `${src}_${version}-1.dsc`,
                `${src}_${version}.orig.tar.gz`,
            ]);
            for (const f of got.files) {
                assert.equal(sha256(path.join(dir, f)), sha256(upstreamFile(src, f)), `${f} as upstream has it`);
            }
        }
    });

    it("a re-sync with a smaller lock lists only its sources, and keeps their files in the pool", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["hello"], withDeps: true });
        await syncMirror({
            source: source(),
            packages: lock,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            withSources: true,
        });
        const sources = fs.readFileSync(
            path.join(root, "debian", "dists", "stable", "main", "source", "Sources"),
            "utf8",
        );
        assert.match(sources, /^Package: hello$/m);
        assert.doesNotMatch(sources, /^Package: toolsrc$/m);
        const pool = await listFiles(path.join(root, "debian", "pool"));
        for (const f of ["hello_1.0-1.dsc", "hello_1.0.orig.tar.gz", "hello_1.0-1.debian.tar.xz"]) {
            assert.ok(pool.includes(`main/h/hello/${f}`), pool.join("\n"));
            assert.equal(
                sha256(path.join(root, "debian", "pool", "main", "h", "hello", f)),
                sha256(upstreamFile("hello", f)),
            );
        }
    });

    it("refresh reports a missing or altered source file as drift", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["hello"], withDeps: true });
        const state = await syncMirror({
            source: source(),
            packages: lock,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            withSources: true,
        });
        assert.deepEqual((await readMirror(state)).drift, []);
        const dsc = path.join(root, "debian", "pool", "main", "h", "hello", "hello_1.0-1.dsc");
        const saved = fs.readFileSync(dsc);
        fs.rmSync(dsc);
        try {
            const drift = (await readMirror(state)).drift;
            assert.ok(
                drift.some((d) => d.startsWith("missing-pool-file: pool/main/h/hello/hello_1.0-1.dsc")),
                drift.join("\n"),
            );
        } finally {
            fs.writeFileSync(dsc, saved);
        }
    });

    it("withSources on an upstream whose Release lists no Sources index: names withSources and the component, publishes and downloads nothing", async () => {
        const { lock } = await resolveLock({
            source: { ...source(), url: binariesServer.url, key: binariesOnly.publicKeyArmored },
            queries: ["hello"],
        });
        await assert.rejects(
            syncMirror({
                source: { ...source(), url: binariesServer.url, key: binariesOnly.publicKeyArmored },
                packages: lock,
                publish: { root, prefix: "nosources" },
                signing: { privateKey: signing.keys[0]!.privateKeyArmored },
                withSources: true,
            }),
            (err: Error & { argument?: string }) => {
                assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"), err.message);
                assert.equal(err.argument, "withSources");
                assert.match(err.message, /withSources/);
                assert.match(err.message, /component main/);
                return true;
            },
        );
        assert.equal(fs.existsSync(path.join(root, "nosources", "dists")), false);
        // Refused before anything was downloaded.
        const downloads = downloadDir({ publish: { root, prefix: "nosources" }, source: source() });
        assert.deepEqual(fs.existsSync(downloads) ? fs.readdirSync(downloads) : [], []);
    });

    it("a source file that does not match the signed Sources: ERR_VERIFICATION naming it; the published mirror is unchanged", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["tool"], withDeps: true });
        const spec = {
            source: source(),
            packages: lock,
            publish: { root, prefix: "tampered" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
        };
        await syncMirror(spec);
        const repoDir = path.join(root, "tampered");
        const before = await listFiles(repoDir);
        const releaseBefore = fs.readFileSync(path.join(repoDir, "dists", "stable", "Release"));
        const victim = upstreamFile("toolsrc", "toolsrc_2.0.orig.tar.gz");
        const original = fs.readFileSync(victim);
        fs.writeFileSync(
            victim,
            Buffer.concat([original.subarray(0, original.length - 1), Buffer.from([original.at(-1)! ^ 1])]),
        );
        try {
            await assert.rejects(syncMirror({ ...spec, withSources: true }), (err: Error) => {
                assert.ok(hasCode(err, "ERR_VERIFICATION"), err.message);
                assert.match(err.message, /toolsrc_2\.0\.orig\.tar\.gz/);
                return true;
            });
        } finally {
            fs.writeFileSync(victim, original);
        }
        assert.deepEqual(await listFiles(repoDir), before);
        assert.deepEqual(fs.readFileSync(path.join(repoDir, "dists", "stable", "Release")), releaseBefore);
    });
});
