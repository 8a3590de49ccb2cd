/**
 * Two AptMirrors laid out like Debian's own archive: `debian/dists/bookworm` and
 * `debian/dists/bookworm-updates`, one pool. Each keeps and removes only its own: a re-sync or
 * destroy of one leaves the other byte for byte, served, and read by apt-get.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type AptMirrorSpec, downloadDir, removeMirror, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import type { AptClient } from "../../harness/fixtures/aptget";
import {
    type AptRepo,
    type BuiltDeb,
    buildRepo,
    type GpgKeyring,
    makeDeb,
    makeGpgKeyring,
} from "../../harness/fixtures/aptrepo";
import { aptInstallsFrom, suiteFiles } from "../../harness/fixtures/aptsite";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

describe("two AptMirrors sharing one prefix and its pool, one suite each", function () {
    this.timeout(180_000);

    let upstreams: AptRepo[] = [];
    let servers: StaticServer[] = [];
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    const clients: AptClient[] = [];
    const specs: AptMirrorSpec[] = [];
    const suites = ["bookworm", "bookworm-updates"] as const;

    const suiteFilesOf = (suite: string) => suiteFiles(path.join(root, "debian"), suite);
    const aptReads = (suite: string, pkg: string) =>
        aptInstallsFrom(
            clients,
            { uri: `${mirrorServer.url}/debian/`, suite, signedBy: signing.keys[0]!.publicKeyArmored },
            pkg,
        );

    before(async () => {
        signing = await makeGpgKeyring(["rsa"]);
        // One package built once, in both suites (as a point release and its updates share files).
        const shared: BuiltDeb = await makeDeb({ name: "base", version: "1.0-1", arch: "amd64" });
        upstreams = [
            await buildRepo({
                distribution: "bookworm",
                components: { main: [shared, { name: "app", version: "1.0-1", depends: "base" }] },
            }),
            await buildRepo({
                distribution: "bookworm-updates",
                components: { main: [shared, { name: "tool", version: "2.0-1", depends: "base" }] },
            }),
        ];
        servers = await Promise.all(upstreams.map((u) => startStaticServer(u.dir)));
        root = await makeTempDir("shared-prefix");
        mirrorServer = await startStaticServer(root);
        for (const [i, suite] of suites.entries()) {
            const source = {
                url: servers[i]!.url,
                distribution: suite,
                components: ["main"],
                architectures: ["amd64"],
                key: upstreams[i]!.publicKeyArmored,
            };
            const { lock } = await resolveLock({ source, queries: [i === 0 ? "app" : "tool"], withDeps: true });
            specs.push({
                source,
                packages: lock,
                publish: { root, prefix: "debian", origin: "site" },
                signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            });
        }
    });

    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        for (const s of servers) await s.close();
        for (const u of upstreams) await u.close();
        await signing?.close();
        await cleanupAll();
    });

    it("both sync into one pool; apt-get installs from each suite", async () => {
        await syncMirror(specs[0]!);
        await syncMirror(specs[1]!);
        assert.deepEqual(fs.readdirSync(path.join(root, "debian/dists")).sort(), [...suites]);
        assert.deepEqual(await aptReads("bookworm", "app"), ["app_1.0-1_amd64.deb", "base_1.0-1_amd64.deb"]);
        assert.deepEqual(await aptReads("bookworm-updates", "tool"), ["base_1.0-1_amd64.deb", "tool_2.0-1_amd64.deb"]);
        // Each suite keeps its own downloads.
        assert.notEqual(downloadDir(specs[0]!), downloadDir(specs[1]!));
        assert.equal(fs.readdirSync(downloadDir(specs[0]!)).length, 2);
        assert.equal(fs.readdirSync(downloadDir(specs[1]!)).length, 2);
    });

    it("a re-sync of one downloads nothing and leaves the other byte for byte", async () => {
        const other = suiteFilesOf("bookworm-updates");
        for (const s of servers) s.clearLog();
        await syncMirror({ ...specs[0]!, publish: { ...specs[0]!.publish, origin: "again" } });
        assert.deepEqual(
            servers.flatMap((s) => s.requests.filter((r) => r.path.startsWith("/pool/"))),
            [],
            "a suite re-downloaded files",
        );
        assert.deepEqual(suiteFilesOf("bookworm-updates"), other);
        await syncMirror(specs[1]!);
        for (const s of servers) s.clearLog();
        await syncMirror(specs[0]!);
        assert.deepEqual(
            servers.flatMap((s) => s.requests.filter((r) => r.path.startsWith("/pool/"))),
            [],
        );
    });

    it("destroying one suite leaves the other byte for byte and served; the shared pool file stays", async () => {
        const other = suiteFilesOf("bookworm-updates");
        await removeMirror(specs[0]!);
        assert.deepEqual(fs.readdirSync(path.join(root, "debian/dists")), ["bookworm-updates"]);
        assert.deepEqual(suiteFilesOf("bookworm-updates"), other);
        assert.ok(!fs.existsSync(path.join(root, "debian/pool/main/a/app")), "the destroyed suite's own file is left");
        assert.ok(!fs.existsSync(downloadDir(specs[0]!)));
        assert.ok(fs.existsSync(downloadDir(specs[1]!)));
        assert.deepEqual(await aptReads("bookworm-updates", "tool"), ["base_1.0-1_amd64.deb", "tool_2.0-1_amd64.deb"]);
    });

    it("destroying the last suite removes the prefix", async () => {
        await removeMirror(specs[1]!);
        assert.deepEqual(fs.readdirSync(root), []);
        assert.deepEqual(fs.readdirSync(`${root}.airgap`), ["indexes"]);
    });
});
