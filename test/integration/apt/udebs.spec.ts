/**
 * `udebs`: debian-installer packages, selected by queries with their udeb dependencies, published
 * in `main/debian-installer/binary-<arch>/`. Judged by Debian's own tools: grep-dctrl parses the
 * published index, apt-get reads it through a `main/debian-installer` source and downloads a
 * udeb, and every file it names is in the pool with the SHA256 it lists.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { readMirror, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { parseRelease } from "../../../provider/apt/release";
import { hasCode } from "../../../provider/errors";
import { type AptClient, describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { run } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("AptMirror udebs: debian-installer packages", function () {
    this.timeout(180_000);

    let upstream: AptRepo;
    let plain: AptRepo;
    let server: StaticServer;
    let plainServer: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    const clients: AptClient[] = [];

    before(async () => {
        upstream = await buildRepo({
            distribution: "stable",
            components: { main: [{ name: "hello", version: "1.0-1" }] },
            udebs: {
                main: [
                    {
                        name: "busybox-udeb",
                        version: "1:1.35.0-4",
                        source: "busybox",
                        section: "debian-installer",
                        depends: "libc6-udeb",
                        extraFields: { "Package-Type": "udeb" },
                    },
                    {
                        name: "libc6-udeb",
                        version: "2.36-9",
                        source: "glibc",
                        section: "debian-installer",
                        extraFields: { "Package-Type": "udeb" },
                    },
                    {
                        name: "unrelated-udeb",
                        version: "1.0",
                        section: "debian-installer",
                        extraFields: { "Package-Type": "udeb" },
                    },
                ],
            },
        });
        plain = await buildRepo({
            distribution: "stable",
            components: { main: [{ name: "hello", version: "1.0-1" }] },
        });
        server = await startStaticServer(upstream.dir);
        plainServer = await startStaticServer(plain.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("udebs-mirror");
        mirrorServer = await startStaticServer(root);
    });
    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await server?.close();
        await plainServer?.close();
        await upstream?.close();
        await plain?.close();
        await signing?.close();
        await cleanupAll();
    });

    const source = (url = server.url, key = upstream.publicKeyArmored) => ({
        url,
        distribution: "stable",
        components: ["main"],
        architectures: ["amd64"],
        key,
    });

    it("publishes the udebs the queries select with their dependencies; grep-dctrl and apt-get read the index, the files match", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["hello"] });
        const state = await syncMirror({
            source: source(),
            packages: lock,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            udebs: ["busybox-udeb"],
        });
        const repoDir = path.join(root, "debian");
        const dist = path.join(repoDir, "dists", "stable");
        const index = path.join(dist, "main", "debian-installer", "binary-amd64", "Packages");
        const release = parseRelease(fs.readFileSync(path.join(dist, "Release"), "utf8"));
        for (const name of ["Packages", "Packages.gz", "Packages.xz"]) {
            const listed = release.files.find((f) => f.path === `main/debian-installer/binary-amd64/${name}`);
            assert.ok(listed, `${name} in the signed Release`);
            assert.equal(listed.sha256, sha256(fs.readFileSync(path.join(path.dirname(index), name))));
        }
        // Debian's own parser of control files.
        const parsed = await run("grep-dctrl", [
            "-n",
            "-s",
            "Package,Filename,SHA256,Size",
            "-r",
            "-F",
            "Package",
            ".",
            index,
        ]);
        const values = parsed.stdout
            .trim()
            .split("\n\n")
            .map((block) => block.split("\n"));
        assert.deepEqual(values.map((v) => v[0]).sort(), ["busybox-udeb", "libc6-udeb"]);
        for (const [, filename, hash, size] of values) {
            assert.match(filename!, /^pool\/main\/.*\.udeb$/);
            const bytes = fs.readFileSync(path.join(repoDir, filename!));
            assert.equal(sha256(bytes), hash);
            assert.equal(bytes.length, Number(size));
        }
        // The binary index has no udebs; the udeb index no debs.
        const binary = fs.readFileSync(path.join(dist, "main", "binary-amd64", "Packages"), "utf8");
        assert.doesNotMatch(binary, /udeb/);

        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/debian/`,
                    suites: ["stable"],
                    components: ["main/debian-installer"],
                    signedBy: signing.keys[0]!.publicKeyArmored,
                },
            ],
        });
        clients.push(client);
        const update = await client.update();
        assert.ok(update.ok, describeAptResult("apt-get update", update));
        assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m);
        const policy = await client.cachePolicy("busybox-udeb");
        assert.match(policy.stdout, /Candidate: 1:1\.35\.0-4/, describeAptResult("apt-cache policy", policy));
        const got = await client.download(["busybox-udeb"]);
        assert.ok(got.ok, describeAptResult("apt-get download busybox-udeb", got));
        const fetched = fs.readdirSync(got.dir);
        assert.equal(fetched.length, 1, fetched.join(", "));
        assert.equal(
            sha256(fs.readFileSync(path.join(got.dir, fetched[0]!))),
            values.find((v) => v[0] === "busybox-udeb")![2],
        );

        assert.deepEqual((await readMirror(state)).drift, []);
    });

    it("udebs on an upstream without debian-installer packages for the architecture: names udebs and the architecture, publishes nothing", async () => {
        const { lock } = await resolveLock({
            source: source(plainServer.url, plain.publicKeyArmored),
            queries: ["hello"],
        });
        await assert.rejects(
            syncMirror({
                source: source(plainServer.url, plain.publicKeyArmored),
                packages: lock,
                publish: { root, prefix: "no-installer" },
                signing: { privateKey: signing.keys[0]!.privateKeyArmored },
                udebs: ["busybox-udeb"],
            }),
            (err: Error & { argument?: string }) => {
                assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"), err.message);
                assert.equal(err.argument, "udebs");
                assert.match(err.message, /^udebs: /);
                assert.match(err.message, /architecture amd64/);
                return true;
            },
        );
        assert.equal(fs.existsSync(path.join(root, "no-installer", "dists")), false);
    });

    it("a udeb query that matches nothing names udebs", async () => {
        const { lock } = await resolveLock({ source: source(), queries: ["hello"] });
        await assert.rejects(
            syncMirror({
                source: source(),
                packages: lock,
                publish: { root, prefix: "no-match" },
                signing: { privateKey: signing.keys[0]!.privateKeyArmored },
                udebs: ["no-such-udeb"],
            }),
            (err: Error & { argument?: string }) => {
                assert.match(err.argument ?? "", /^udebs/);
                assert.match(err.message, /no-such-udeb/);
                return true;
            },
        );
    });
});
