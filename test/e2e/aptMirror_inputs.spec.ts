import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { AptMirrorArgs } from "../../sdk";
import { makeAptClient } from "../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import { createProgramStack, errorDiagnostics, type ProgramStack, stateFilesContaining } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { makeTempDir, removeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";
import { aptAndHostProgram, aptProgram } from "./programs";

/**
 * AptMirror's inputs through the real Pulumi CLI from program directories: a lock file that lets
 * preview run without upstream; inputs that are wrong, each refused by preview with the argument
 * named and nothing written under the publish root; and errors while the program runs, which
 * fail `preview` and `up` fast and leave the state and the published mirror as they were.
 */

const MAIN = [
    { name: "app", version: "1.0-1", depends: "libfoo (>= 1.0)" },
    { name: "libfoo", version: "1.2-1" },
    { name: "unrelated", version: "3.0-1" },
];

/** Every path below `dir` (relative, sorted); [] when `dir` is empty. */
function entriesBelow(dir: string): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
            const child = path.posix.join(rel, entry.name);
            out.push(child);
            if (entry.isDirectory()) walk(child);
        }
    };
    walk("");
    return out.sort();
}

/** Listens where the upstream server was: counts every connection attempt and drops it. */
async function deadUpstream(port: number): Promise<{ connections: () => number; close: () => Promise<void> }> {
    let connections = 0;
    const server = net.createServer((socket) => {
        connections++;
        socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
    });
    return {
        connections: () => connections,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}

describe("AptMirror inputs with the real Pulumi CLI", function () {
    this.timeout(300_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer;
    let signing: GpgKeyring;

    before(async () => {
        upstream = await buildRepo({ distribution: "bookworm", signWith: "ed25519", components: { main: MAIN } });
        upstreamServer = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
    });

    after(async () => {
        await upstreamServer?.close();
        await upstream?.close();
        await signing?.close();
    });

    const sourceArgs = () => ({
        url: upstreamServer.url,
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
    });

    describe("lockFile", () => {
        let t: ProgramStack;
        let root: string;
        let work: string;
        let lockFile: string;
        let mirrorServer: StaticServer;
        let dead: { connections: () => number; close: () => Promise<void> } | undefined;

        before(async () => {
            root = await makeTempDir("inputs-lock-root");
            work = await makeTempDir("inputs-lock-work");
            lockFile = path.join(work, "debian.lock.json");
            mirrorServer = await startStaticServer(root);
            const args: AptMirrorArgs = {
                source: sourceArgs(),
                packages: ["app"],
                publish: { root, prefix: "debian" },
                lockFile,
            };
            t = await createProgramStack("aptlockfile", {
                source: aptProgram,
                config: () => ({
                    args: JSON.stringify(args),
                    signingKey: { secret: signing.keys[0]!.privateKeyArmored },
                }),
            });
        });

        after(async () => {
            await dead?.close();
            await t?.dispose();
            await mirrorServer?.close();
            await removeTempDir(work);
            await removeTempDir(root);
        });

        it("up resolves the queries and writes the lock file", async () => {
            assert.ok(!fs.existsSync(lockFile));
            const r = await t.up();
            assert.deepEqual(
                r.steps.filter((step) => step.type.endsWith(":AptMirror")).map((step) => step.op),
                ["create"],
                t.lastOutput(),
            );
            const expected = { "app/amd64": "1.0-1", "libfoo/amd64": "1.2-1" };
            const saved = JSON.parse(fs.readFileSync(lockFile, "utf8"));
            assert.equal(saved.version, 1);
            assert.match(saved.inputs, /^[0-9a-f]{64}$/);
            assert.deepEqual(saved.source, { url: upstreamServer.url, distribution: "bookworm" });
            assert.deepEqual(saved.packages, expected);

            const client = await makeAptClient({
                sources: [
                    {
                        uri: `${mirrorServer.url}/debian`,
                        suites: ["bookworm"],
                        components: ["main"],
                        signedBy: signing.publicKeysArmored,
                    },
                ],
            });
            try {
                assert.ok((await client.update()).ok);
                const install = await client.installDownloadOnly(["app"]);
                assert.ok(install.ok, install.stdout + install.stderr);
                assert.deepEqual(install.files, ["app_1.0-1_amd64.deb", "libfoo_1.2-1_amd64.deb"]);
            } finally {
                await client.close();
            }
        });

        it("preview --expect-no-changes passes with upstream gone: the lock comes from the file", async () => {
            upstreamServer.clearLog();
            await upstreamServer.close();
            dead = await deadUpstream(upstreamServer.port);
            await t.preview({ expectNoChanges: true });
            assert.equal(dead.connections(), 0, "preview contacted upstream");
            assert.deepEqual(upstreamServer.requests, []);
        });

        it("without the lock file, the same preview needs upstream and fails", async () => {
            const saved = fs.readFileSync(lockFile);
            fs.rmSync(lockFile);
            try {
                await assert.rejects(t.preview({ expectNoChanges: true }), /InRelease/);
                assert.ok(dead!.connections() > 0, "preview did not try upstream");
            } finally {
                fs.writeFileSync(lockFile, saved);
                await dead?.close();
                dead = undefined;
                upstreamServer = await startStaticServer(upstream.dir);
            }
        });
    });

    describe("inputs refused by preview, with nothing written under the root", () => {
        let t: ProgramStack;
        let root: string;
        /** What the next preview's program declares. */
        let args: AptMirrorArgs;
        let signed = true;

        const valid = (): AptMirrorArgs => ({
            source: sourceArgs(),
            packages: ["app"],
            publish: { root, prefix: "debian" },
        });

        /** Runs preview, expects it to fail, and returns everything the CLI printed. */
        const failingPreview = async (): Promise<string> => {
            let message = "";
            await assert.rejects(t.preview(), (err: Error) => {
                message = err.message;
                return true;
            });
            return `${message}\n${t.lastOutput()}`;
        };

        before(async () => {
            root = await makeTempDir("inputs-bad-root");
            t = await createProgramStack("aptbadinputs", {
                source: aptProgram,
                config: () => ({
                    args: JSON.stringify(args),
                    ...(signed ? { signingKey: { secret: signing.keys[0]!.privateKeyArmored } } : {}),
                }),
            });
        });

        after(async () => {
            await t?.dispose();
            await removeTempDir(root);
        });

        afterEach(() => {
            // A preview writes nothing under the publish root: no prefix, no downloads, no lock,
            // not even the index cache (kept outside the root while previewing).
            assert.deepEqual(entriesBelow(root), [], "something was written under the publish root");
        });

        it("the valid inputs preview cleanly (the control case)", async () => {
            args = valid();
            const r = await t.preview();
            assert.deepEqual(
                r.steps.filter((step) => step.type.endsWith(":AptMirror")).map((step) => step.op),
                ["create"],
                t.lastOutput(),
            );
        });

        it("no signing and no allowUnsigned: names signing", async () => {
            args = valid();
            signed = false;
            const output = await failingPreview();
            signed = true;
            assert.match(
                output,
                /AptMirror resource 'debian': property signing value .* has a problem: give signing\.privateKey to sign the published Release, or set allowUnsigned/,
            );
        });

        it("a query that does not parse: shows the query and the position", async () => {
            args = { ...valid(), packages: ["app", "libfoo (>= 1.0"] };
            const output = await failingPreview();
            assert.match(output, /query "libfoo \(>= 1\.0": .* at column 15/);
        });

        it("publish.root left out: names publish.root", async () => {
            args = { ...valid(), publish: { prefix: "debian" } as AptMirrorArgs["publish"] };
            const output = await failingPreview();
            assert.match(
                output,
                /AptMirror resource 'debian': property publish\.root value .* has a problem: undefined must be an absolute path/,
            );
        });

        it("publish.root that does not exist: names publish.root and does not create it", async () => {
            const missing = path.join(root, "not-there");
            args = { ...valid(), publish: { root: missing, prefix: "debian" } };
            const output = await failingPreview();
            assert.match(
                output,
                new RegExp(
                    `AptMirror resource 'debian': property publish\\.root value .* has a problem: "${missing}" does not exist or is not a directory`,
                ),
            );
            assert.ok(!fs.existsSync(missing));
        });
    });

    describe("a signing key the program passes as plain text", () => {
        it("is kept out of the state all the same", async () => {
            const root = await makeTempDir("inputs-plain-key");
            const key = signing.keys[0]!.privateKeyArmored;
            const keyFile = path.join(root, "..", `${path.basename(root)}.key.asc`);
            fs.writeFileSync(keyFile, key, { mode: 0o600 });
            const args: AptMirrorArgs = {
                source: sourceArgs(),
                packages: ["app"],
                publish: { root, prefix: "debian" },
            };
            const t = await createProgramStack("aptplainkey", {
                source: `import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
// Read from a file: a plain string, not a pulumi.secret.
const privateKey = fs.readFileSync(config.require("signingKeyFile"), "utf8");
new AptMirror("debian", { ...config.requireObject<AptMirrorArgs>("args"), signing: { privateKey } });
`,
                config: () => ({ args: JSON.stringify(args), signingKeyFile: keyFile }),
            });
            try {
                await t.up();
                const keyLine = key.split("\n").find((l) => l.length > 60);
                assert.ok(keyLine);
                // The check can fail: the source URL, which is in the state, is found the same way.
                assert.ok(stateFilesContaining(t, [upstreamServer.url]).length > 0);
                assert.deepEqual(stateFilesContaining(t, [keyLine]), []);
                await t.preview({ expectNoChanges: true });
                await t.destroy();
            } finally {
                await t.dispose();
                await removeTempDir(root);
                fs.rmSync(keyFile, { force: true });
            }
        });
    });

    describe("errors while the program runs: preview and up fail fast and change nothing", () => {
        // Its own upstream, which the tests change.
        let own: AptRepo;
        let ownServer: StaticServer;
        let t: ProgramStack;
        let root: string;
        let hostRoot: string;
        let args: AptMirrorArgs;

        before(async () => {
            own = await buildRepo({ distribution: "bookworm", signWith: "ed25519", components: { main: MAIN } });
            ownServer = await startStaticServer(own.dir);
            root = await makeTempDir("inputs-run-root");
            hostRoot = await makeTempDir("inputs-run-host");
            args = {
                source: { ...sourceArgs(), url: ownServer.url, key: own.publicKeyArmored },
                packages: ["app"],
                publish: { root, prefix: "debian" },
            };
            // The mirror's outputs are exported and feed a HostMirrorConfig.
            t = await createProgramStack("aptrunerrors", {
                source: aptAndHostProgram,
                config: () => ({
                    args: JSON.stringify(args),
                    hostRoot,
                    signingKey: { secret: signing.keys[0]!.privateKeyArmored },
                }),
            });
            const up = await t.up();
            assert.deepEqual(up.outputs.packages, { "app/amd64": "1.0-1", "libfoo/amd64": "1.2-1" });
            assert.ok(Object.keys(up.outputs.hostFiles as object).length > 0);
        });

        after(async () => {
            await t?.dispose();
            await ownServer?.close();
            await own?.close();
            await removeTempDir(root);
            await removeTempDir(hostRoot);
        });

        /**
         * `pulumi preview` and `pulumi up --skip-preview` each fail within 60 s with `expected`
         * reported once, no stack trace; the state (secrets in plain text), the published mirror (inodes and
         * mtimes included) and the host root are exactly as before.
         */
        const failsCleanly = async (expected: RegExp) => {
            const before = {
                state: await t.stateContent(),
                mirror: snapshotTree(path.join(root, "debian"), { identity: true }),
                host: snapshotTree(hostRoot, { identity: true }),
            };
            for (const op of [["preview"], ["up", "--yes", "--skip-preview"]]) {
                const r = await t.cli([...op, "--non-interactive"], { timeoutMs: 120_000 });
                const out = `${r.stdout}${r.stderr}`;
                assert.notEqual(r.code, 0, `${op[0]} succeeded:\n${out}`);
                assert.ok(r.elapsedMs < 60_000, `${op[0]} took ${r.elapsedMs} ms`);
                const errors = errorDiagnostics(r).filter((m) => m.includes('AptMirror "debian"'));
                assert.equal(errors.length, 1, `one error about the mirror, got ${JSON.stringify(errors)}`);
                assert.match(errors[0], expected);
                assert.doesNotMatch(out, /unhandled exception|error serializing property|^\s+at /m);
                assert.doesNotMatch(out, /deleting|deleted/);
            }
            assert.deepEqual(await t.stateContent(), before.state, "the state changed");
            assert.deepEqual(snapshotTree(path.join(root, "debian"), { identity: true }), before.mirror);
            assert.deepEqual(snapshotTree(hostRoot, { identity: true }), before.host);
        };

        it("a query matching nothing names the resource, packages[i] and the upstream", async () => {
            args = { ...args, packages: ["app", "no-such-package-xyz"] };
            await failsCleanly(
                /^AptMirror "debian": packages\[1\] "no-such-package-xyz" matches nothing in http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm main/,
            );
        });

        it("a package name typo names the query", async () => {
            args = { ...args, packages: ["apq"] };
            await failsCleanly(/^AptMirror "debian": packages\[0\] "apq" matches nothing/);
        });

        it("a dependency that became unsatisfiable upstream names the package and the dependency", async () => {
            args = { ...args, packages: ["app"] };
            await t.preview({ expectNoChanges: true });
            await own.addDebs("main", [{ name: "app", version: "1.1-1", depends: "libmissing (>= 2)" }]);
            await failsCleanly(
                /^AptMirror "debian": packages: 1 unsatisfiable dependency in http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm main:\n\s+app 1\.1-1 \(amd64\) Depends "libmissing \(>= 2\)"/,
            );
        });

        it("the upstream unreachable without a lock file names the source and the URL", async () => {
            await ownServer.close();
            await failsCleanly(/^AptMirror "debian": source.*http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm\/InRelease/s);
        });
    });
});
