import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AptMirrorArgs } from "../../sdk";
import { makeAptClient } from "../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import { createProgramStack, type ProgramStack, stateFilesContaining } from "../harness/program";
import { aptProgram } from "./programs";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { makeTempDir, removeTempDir } from "../harness/tmp";

describe("AptMirror with the real Pulumi CLI from a program directory, judged by apt-get", function () {
    this.timeout(300_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer;
    let root: string;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let args: AptMirrorArgs;
    let t: ProgramStack;
    let publicKey = "";

    /** Real apt-get against what we published: update, then fetch `pkg` with its dependencies. */
    const aptInstall = async (pkg: string) => {
        const client = await makeAptClient({
            sources: [
                { uri: `${mirrorServer.url}/debian`, suites: ["bookworm"], components: ["main"], signedBy: publicKey },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, update.stdout + update.stderr);
            assert.doesNotMatch(update.stdout + update.stderr, /^(W|E|Err):/m, update.stdout + update.stderr);
            const install = await client.installDownloadOnly([pkg]);
            assert.ok(install.ok, install.stdout + install.stderr);
            return install.files.map((f) => path.basename(f)).sort();
        } finally {
            await client.close();
        }
    };

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            architectures: ["amd64", "arm64"],
            signWith: "ed25519",
            components: {
                main: [
                    { name: "app", version: "1.0-1", depends: "libfoo (>= 1.0), mail-transport-agent | other-mta" },
                    { name: "libfoo", version: "1.2-1", preDepends: "base-all" },
                    { name: "base-all", version: "1:0.9~rc1-1", arch: "all" },
                    { name: "tiny-mta", version: "2.0-1", provides: "mail-transport-agent" },
                    { name: "unrelated", version: "3.0-1" },
                    { name: "app", version: "1.0-1", arch: "arm64", depends: "libfoo (>= 1.0)" },
                ],
            },
        });
        upstreamServer = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("apt-e2e-root");
        mirrorServer = await startStaticServer(root);
        args = {
            source: {
                url: upstreamServer.url,
                distribution: "bookworm",
                components: ["main"],
                architectures: ["amd64"],
                key: upstream.publicKeyArmored,
            },
            packages: ["app"],
            publish: { root, prefix: "debian", origin: "site" },
        };
        t = await createProgramStack("aptmirror", {
            source: aptProgram,
            config: () => ({
                args: JSON.stringify(args),
                signingKey: { secret: signing.keys[0].privateKeyArmored },
            }),
        });
    });

    after(async () => {
        await t?.dispose();
        await mirrorServer?.close();
        await upstreamServer?.close();
        await upstream?.close();
        await signing?.close();
        await removeTempDir(root);
    });

    it("up publishes the dependency closure, and apt-get installs from it", async () => {
        const r = await t.up();
        assert.deepEqual(r.outputs.packages, {
            "app/amd64": "1.0-1",
            "base-all/all": "1:0.9~rc1-1",
            "libfoo/amd64": "1.2-1",
            "tiny-mta/amd64": "2.0-1",
        });
        assert.equal(r.outputs.count, 4);
        publicKey = r.outputs.publicKey as string;
        assert.match(publicKey, /BEGIN PGP PUBLIC KEY BLOCK/);
        assert.deepEqual(await aptInstall("app"), [
            "app_1.0-1_amd64.deb",
            "base-all_1%3a0.9~rc1-1_all.deb",
            "libfoo_1.2-1_amd64.deb",
            "tiny-mta_2.0-1_amd64.deb",
        ]);
    });

    it("keeps the signing key out of the state in plain text", () => {
        const keyLine = signing.keys[0].privateKeyArmored.split("\n").find((l) => l.length > 60);
        assert.ok(keyLine);
        // The check can fail: the public key, which is in the state, is found the same way.
        assert.ok(stateFilesContaining(t, [publicKey.split("\n").find((l) => l.length > 60) ?? "-"]).length > 0);
        assert.deepEqual(stateFilesContaining(t, [keyLine]), []);
    });

    it("preview --expect-no-changes passes right after up", async () => {
        await t.preview({ expectNoChanges: true });
    });

    it("a preview against an unchanged upstream fetches only its InRelease (the lock cache answers)", async () => {
        await t.preview({ expectNoChanges: true });
        upstreamServer.clearLog();
        await t.preview({ expectNoChanges: true });
        assert.deepEqual(
            upstreamServer.requests.map((r) => `${r.method} ${r.path}`),
            ["GET /dists/bookworm/InRelease"],
        );
    });

    it("a new upstream version shows in preview as that package changing, and up publishes it", async () => {
        await upstream.addDebs("main", [
            { name: "app", version: "1.1-1", depends: "libfoo (>= 1.0), mail-transport-agent | other-mta" },
        ]);
        const preview = await t.preview();
        assert.equal(preview.changes.update, 1, t.lastOutput());
        assert.match(t.lastOutput(), /~ packages\s*:/);
        // The lock is text: the CLI shows the package's line going and coming.
        assert.match(t.lastOutput(), /\n\s*- app\/amd64 1\.0-1\n\s*\+ app\/amd64 1\.1-1\n/);
        await t.up();
        assert.ok((await aptInstall("app")).includes("app_1.1-1_amd64.deb"));
        await t.preview({ expectNoChanges: true });
    });

    it("refresh reports a tampered pool file, and up repairs it", async () => {
        const pool = path.join(root, "debian/pool/main/libf/libfoo/libfoo_1.2-1_amd64.deb");
        const original = fs.readFileSync(pool);
        // The pool file is hard-linked to the download store: replace it, do not write through.
        fs.rmSync(pool);
        fs.writeFileSync(pool, Buffer.concat([original.subarray(0, 100), Buffer.from("tampered")]));
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        await assert.rejects(
            t.preview({ expectNoChanges: true }),
            /no changes were expected (for preview )?but changes were proposed/,
        );
        const up = await t.up();
        assert.equal(up.changes.update, 1, t.lastOutput());
        assert.deepEqual(up.outputs.drift, []);
        assert.deepEqual(fs.readFileSync(pool), original);
        await aptInstall("app");
        await t.preview({ expectNoChanges: true });
    });

    it("destroy removes this mirror's prefix and its own engine state, and nothing else", async () => {
        fs.writeFileSync(path.join(root, "keep-me"), "not ours");
        await t.destroy();
        assert.deepEqual(fs.readdirSync(root).sort(), ["keep-me"]);
        assert.equal(fs.readFileSync(path.join(root, "keep-me"), "utf8"), "not ours");
        // Left of the engine state beside the root: only the index cache every mirror of it
        // shares (pruned by age).
        assert.deepEqual(fs.readdirSync(`${root}.airgap`), ["indexes"]);
    });
});
