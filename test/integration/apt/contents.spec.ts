/**
 * `contents: true`: the mirror publishes `<component>/Contents-<arch>.gz` in its signed Release.
 * Judged by apt-file (`apt-file update` through the mirror, then `apt-file search`) and by the
 * format itself (`zcat | grep` of a known path gives `path<whitespace>section/package`); the file
 * list of a .deb is compared with what `dpkg-deb -c` says, for each data.tar compression.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { debFileNames } from "../../../provider/apt/contents";
import { type AptMirrorState, readMirror, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { parseRelease } from "../../../provider/apt/release";
import { type AptClient, describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { run } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const LONG = `/usr/share/hello/${"deep/".repeat(25)}file-with-a-long-path.txt`;

describe("AptMirror contents: Contents-<arch>.gz", function () {
    this.timeout(180_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    let state: AptMirrorState;
    const clients: AptClient[] = [];

    before(async () => {
        upstream = await buildRepo({
            distribution: "stable",
            architectures: ["amd64", "arm64"],
            components: {
                main: [
                    {
                        name: "hello",
                        version: "1.0-1",
                        section: "utils",
                        depends: "hello-data",
                        files: { "/usr/bin/hello": "#!/bin/sh\n", "/usr/share/common/shared": "a", [LONG]: "deep" },
                    },
                    {
                        name: "hello-alt",
                        version: "1.0-1",
                        section: "utils",
                        files: { "/usr/share/common/shared": "b", "/usr/bin/hello alt": "spaces" },
                    },
                    {
                        name: "hello-data",
                        version: "1.0-1",
                        arch: "all",
                        section: "misc",
                        files: { "/usr/share/hello-data/words": "w" },
                    },
                ],
            },
        });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("contents-mirror");
        mirrorServer = await startStaticServer(root);
        const { lock } = await resolveLock({
            source: source(),
            queries: ["hello", "hello-alt"],
            withDeps: true,
        });
        state = await syncMirror({
            source: source(),
            packages: lock,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            contents: true,
        });
    });
    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    function source() {
        return {
            url: server.url,
            distribution: "stable",
            components: ["main"],
            architectures: ["amd64", "arm64"],
            key: upstream.publicKeyArmored,
        };
    }
    const dist = () => path.join(root, "debian", "dists", "stable");
    const lines = (arch: string) =>
        gunzipSync(fs.readFileSync(path.join(dist(), "main", `Contents-${arch}.gz`)))
            .toString("utf8")
            .split("\n")
            .filter((l) => l !== "");

    it("is listed in the signed Release with its size and SHA256", () => {
        const release = parseRelease(fs.readFileSync(path.join(dist(), "Release"), "utf8"));
        for (const arch of ["amd64", "arm64"]) {
            const listed = release.files.find((f) => f.path === `main/Contents-${arch}.gz`);
            assert.ok(listed, `main/Contents-${arch}.gz in the Release`);
            const bytes = fs.readFileSync(path.join(dist(), "main", `Contents-${arch}.gz`));
            assert.equal(listed.size, bytes.length);
            assert.equal(listed.sha256, createHash("sha256").update(bytes).digest("hex"));
        }
    });

    it("zcat | grep of a known path gives path<whitespace>section/package, sorted, files only", async () => {
        const grep = await run("sh", [
            "-c",
            `zcat '${path.join(dist(), "main", "Contents-amd64.gz")}' | grep '^usr/bin/hello '`,
        ]);
        assert.match(grep.stdout, /^usr\/bin\/hello\s+utils\/hello$/m);
        const amd64 = lines("amd64");
        assert.ok(
            amd64.some((l) => /^usr\/share\/common\/shared\s+utils\/hello,utils\/hello-alt$/.test(l)),
            amd64.join("\n"),
        );
        assert.ok(
            amd64.some((l) => /^usr\/bin\/hello alt\s+utils\/hello-alt$/.test(l)),
            "a path with a space",
        );
        assert.ok(
            amd64.some((l) => l.startsWith(`${LONG.slice(1)} `)),
            "a path longer than a tar header holds",
        );
        assert.ok(
            amd64.some((l) => /^usr\/share\/hello-data\/words\s+misc\/hello-data$/.test(l)),
            "arch all",
        );
        assert.ok(!amd64.some((l) => /^usr\/bin\s/.test(l) || /^usr\/share\/doc\s/.test(l)), "no directories");
        const paths = amd64.map((l) => l.replace(/\s+\S+$/, "").trimEnd());
        assert.deepEqual(
            paths,
            [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
        );
        // arm64 has no hello build: only the arch-all package.
        assert.deepEqual(
            lines("arm64").map((l) => l.replace(/\s+/, " ")),
            ["usr/share/doc/hello-data/README misc/hello-data", "usr/share/hello-data/words misc/hello-data"],
        );
    });

    it("refresh reports no drift (the plain Contents is listed, only its .gz is served, as in Debian)", async () => {
        assert.deepEqual((await readMirror(state)).drift, []);
    });

    it("apt-file update through the mirror, then apt-file search finds the package of a path", async () => {
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/debian/`,
                    suites: ["stable"],
                    components: ["main"],
                    signedBy: signing.keys[0]!.publicKeyArmored,
                },
            ],
        });
        clients.push(client);
        // apt-file's index target, as its package installs it system-wide.
        fs.copyFileSync(
            "/etc/apt/apt.conf.d/50apt-file.conf",
            path.join(client.root, "etc/apt/apt.conf.d/50apt-file.conf"),
        );
        const update = await client.update();
        assert.ok(update.ok, describeAptResult("apt-get update", update));
        assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m);
        assert.match(update.stdout, /amd64 Contents \(deb\)/);
        const env = { ...process.env, APT_CONFIG: client.configPath, LC_ALL: "C" };
        const search = await run("apt-file", ["search", "/usr/share/common/shared"], { env, check: false });
        assert.equal(search.code, 0, `${search.stdout}\n${search.stderr}`);
        assert.deepEqual(search.stdout.trim().split("\n").sort(), [
            "hello-alt: /usr/share/common/shared",
            "hello: /usr/share/common/shared",
        ]);
        const list = await run("apt-file", ["list", "hello-data"], { env, check: false });
        assert.match(list.stdout, /^hello-data: \/usr\/share\/hello-data\/words$/m);
    });

    for (const compression of ["xz", "zstd", "gzip", "none"]) {
        it(`reads the file list of a .deb with data.tar in ${compression} as dpkg-deb -c lists it`, async () => {
            const work = await makeTempDir(`deb-${compression}`);
            const tree = path.join(work, "tree");
            fs.mkdirSync(path.join(tree, "DEBIAN"), { recursive: true });
            fs.mkdirSync(path.join(tree, path.dirname(LONG)), { recursive: true });
            fs.writeFileSync(path.join(tree, LONG), "x");
            fs.mkdirSync(path.join(tree, "usr/bin"), { recursive: true });
            fs.writeFileSync(path.join(tree, "usr/bin/tool"), "y");
            fs.symlinkSync("tool", path.join(tree, "usr/bin/tool-link"));
            fs.writeFileSync(
                path.join(tree, "DEBIAN/control"),
                "Package: tool\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\nDescription: t\n",
            );
            fs.chmodSync(tree, 0o755);
            const deb = path.join(work, "tool.deb");
            await run("dpkg-deb", ["--root-owner-group", `-Z${compression}`, "--build", tree, deb]);
            const listed = (await run("dpkg-deb", ["-c", deb])).stdout
                .split("\n")
                .filter((l) => l !== "" && !l.startsWith("d"))
                .map((l) => l.replace(/^.*? \.\//, "").replace(/ -> .*$/, ""))
                .sort();
            const names: string[] = [];
            for await (const name of debFileNames(deb)) names.push(name);
            assert.deepEqual(names.sort(), listed);
        });
    }
});
