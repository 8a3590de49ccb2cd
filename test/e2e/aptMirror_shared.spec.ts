/**
 * AptMirrors sharing a prefix through the real CLI: two suites of one program destroyed one at a
 * time with apt-get reading the other after each step; two suites claimed by two resources
 * refused at preview; two `pulumi up` at once (two stacks) on one prefix.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AptMirrorArgs } from "../../sdk";
import type { AptClient } from "../harness/fixtures/aptget";
import {
    type AptRepo,
    type BuiltDeb,
    buildRepo,
    type GpgKeyring,
    makeDeb,
    makeGpgKeyring,
} from "../harness/fixtures/aptrepo";
import { aptInstallsFrom, suiteFiles } from "../harness/fixtures/aptsite";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { makeTempDir, removeTempDir } from "../harness/tmp";

/** One AptMirror per entry of the `mirrors` config object, all signed with one key. */
const mirrorsProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const key = config.requireSecret("signingKey");
const mirrors = config.requireObject<Record<string, AptMirrorArgs>>("mirrors");
export const counts = Object.fromEntries(
    Object.entries(mirrors).map(([name, args]) => [name, new AptMirror(name, { ...args, signing: { privateKey: key } }).packageCount]),
);
`;

describe("AptMirrors sharing one prefix, with the real Pulumi CLI", function () {
    this.timeout(600_000);

    let upstreams: AptRepo[];
    let servers: StaticServer[];
    let signing: GpgKeyring;
    let root: string;
    let mirrorServer: StaticServer;
    const clients: AptClient[] = [];
    const stacks: ProgramStack[] = [];

    const args = (i: number, query: string): AptMirrorArgs => ({
        source: {
            url: servers[i]!.url,
            distribution: upstreams[i]!.distribution,
            components: ["main"],
            architectures: ["amd64"],
            key: upstreams[i]!.publicKeyArmored,
        },
        packages: [query],
        publish: { root, prefix: "debian", origin: "site" },
    });
    const stack = async (name: string, mirrors: () => Record<string, AptMirrorArgs>) => {
        const t = await createProgramStack(name, {
            source: mirrorsProgram,
            config: () => ({
                mirrors: JSON.stringify(mirrors()),
                signingKey: { secret: signing.keys[0]!.privateKeyArmored },
            }),
        });
        stacks.push(t);
        return t;
    };
    const aptInstalls = (suite: string, pkg: string) =>
        aptInstallsFrom(
            clients,
            { uri: `${mirrorServer.url}/debian/`, suite, signedBy: signing.keys[0]!.publicKeyArmored },
            pkg,
        );
    const suiteFilesOf = (suite: string) => suiteFiles(path.join(root, "debian"), suite);

    before(async () => {
        signing = await makeGpgKeyring(["rsa"]);
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
        root = await makeTempDir("apt-shared-e2e");
        mirrorServer = await startStaticServer(root);
    });

    after(async () => {
        for (const t of stacks) await t.dispose();
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        for (const s of servers ?? []) await s.close();
        for (const u of upstreams ?? []) await u.close();
        await signing?.close();
        await removeTempDir(root);
    });

    it("two suites of one program: destroyed one at a time, the other stays byte for byte and installable", async () => {
        let mirrors: Record<string, AptMirrorArgs> = { main: args(0, "app"), updates: args(1, "tool") };
        const t = await stack("aptshared", () => mirrors);
        const up = await t.up();
        assert.deepEqual(up.outputs.counts, { main: 2, updates: 2 }, t.lastOutput());
        assert.deepEqual(await aptInstalls("bookworm", "app"), ["app_1.0-1_amd64.deb", "base_1.0-1_amd64.deb"]);
        assert.deepEqual(await aptInstalls("bookworm-updates", "tool"), [
            "base_1.0-1_amd64.deb",
            "tool_2.0-1_amd64.deb",
        ]);
        await t.preview({ expectNoChanges: true });

        // The program drops the first suite: up deletes it, and only it.
        const updates = suiteFilesOf("bookworm-updates");
        mirrors = { updates: args(1, "tool") };
        const dropped = await t.up();
        assert.equal(dropped.changes.delete, 1, t.lastOutput());
        assert.deepEqual(fs.readdirSync(path.join(root, "debian/dists")), ["bookworm-updates"]);
        assert.deepEqual(suiteFilesOf("bookworm-updates"), updates);
        assert.ok(!fs.existsSync(path.join(root, "debian/pool/main/a/app")));
        assert.deepEqual(await aptInstalls("bookworm-updates", "tool"), [
            "base_1.0-1_amd64.deb",
            "tool_2.0-1_amd64.deb",
        ]);
        await t.preview({ expectNoChanges: true });

        await t.destroy();
        assert.deepEqual(fs.readdirSync(root), []);
    });

    it("two resources publishing one suite are refused at preview, and nothing is written", async () => {
        const t = await stack("aptclaim", () => ({ first: args(0, "app"), second: { ...args(0, "base") } }));
        const r = await t.cli(["preview", "--non-interactive"], { timeoutMs: 180_000 });
        const out = r.stdout + r.stderr;
        assert.notEqual(r.code, 0, out);
        assert.match(
            out,
            /AptMirror "second": publish: \S+\/debian\/dists\/bookworm is also written by AptMirror "first"/,
        );
        assert.doesNotMatch(out, /unhandled exception|error serializing property/);
        assert.deepEqual(fs.readdirSync(root), []);
    });

    it("two `pulumi up` at once on one prefix (two stacks, one suite each) both land; apt-get reads both", async () => {
        const a = await stack("aptconcurrent-a", () => ({ main: args(0, "app") }));
        const b = await stack("aptconcurrent-b", () => ({ updates: args(1, "tool") }));
        const [ua, ub] = await Promise.all([a.up(), b.up()]);
        assert.deepEqual(ua.outputs.counts, { main: 2 });
        assert.deepEqual(ub.outputs.counts, { updates: 2 });
        assert.deepEqual(await aptInstalls("bookworm", "app"), ["app_1.0-1_amd64.deb", "base_1.0-1_amd64.deb"]);
        assert.deepEqual(await aptInstalls("bookworm-updates", "tool"), [
            "base_1.0-1_amd64.deb",
            "tool_2.0-1_amd64.deb",
        ]);
        await Promise.all([a.preview({ expectNoChanges: true }), b.preview({ expectNoChanges: true })]);
        await Promise.all([a.destroy(), b.destroy()]);
        assert.deepEqual(fs.readdirSync(root), []);
    });
});
