import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
    type AptLock,
    type AptMirrorSpec,
    type AptSourceSpec,
    downloadDir,
    downloadName,
    resolveLock,
    syncMirror,
} from "../../../provider/apt/mirror";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import {
    type AptRepo,
    type BuiltDeb,
    buildRepo,
    type DebSpec,
    type GpgKeyring,
    makeGpgKeyring,
} from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import type { SyncChildJob } from "./sync_child";
import { snapshotTree } from "../../harness/tree";

/**
 * A sync killed with SIGKILL, in the middle of the downloads and in the middle of the publish.
 * The sync runs in a child node process (`sync_child.ts`) against a local upstream; the parent
 * serves both upstream and mirror, so it sees every request, and judges the mirror with apt-get.
 */

const PAYLOAD = 200_000;
const LIBS: DebSpec[] = Array.from({ length: 8 }, (_, i) => ({
    name: `lib${String.fromCharCode(97 + i)}1`,
    version: "1.0-1",
    size: PAYLOAD,
}));
const MAIN: DebSpec[] = [
    { name: "base", version: "1.0-1", size: PAYLOAD },
    { name: "app", version: "2.0-1", depends: LIBS.map((l) => l.name).join(", "), size: PAYLOAD },
    ...LIBS,
];

/** The `.deb` files below `dir` (relative paths), partial downloads left out. */
function debsBelow(dir: string): string[] {
    const out: string[] = [];
    const walk = (rel: string): void => {
        if (!existsSync(join(dir, rel))) return;
        for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
            const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
            if (entry.isDirectory()) walk(child);
            else if (entry.name.endsWith(".deb") && !entry.name.startsWith(".")) out.push(child);
        }
    };
    walk("");
    return out.sort();
}

interface Child {
    process: ChildProcess;
    /** Resolves with the exit code and signal once the process is gone. */
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startChild(jobFile: string): Child {
    const child = spawn(process.execPath, [join(__dirname, "sync_child.js"), jobFile], {
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
        stdout += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
        (resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    return { process: child, exited };
}

/** Polls `condition` every 25 ms; fails when the child exits first or after `timeoutMs`. */
async function waitFor(child: Child, what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
    let gone: { code: number | null; stderr: string } | undefined;
    void child.exited.then((r) => {
        gone = r;
    });
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
        if (gone !== undefined) {
            throw new Error(`the sync exited (code ${gone.code}) before ${what}:\n${gone.stderr}`);
        }
        if (Date.now() > deadline) {
            child.process.kill("SIGKILL");
            throw new Error(`timed out waiting until ${what}`);
        }
        await new Promise((r) => setTimeout(r, 25));
    }
}

describe("AptMirror killed mid-sync: the published repository survives and the next run resumes", function () {
    this.timeout(300_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    let repoDir: string;
    let mirrorServer: StaticServer;
    let work: string;
    let publicKey: string;
    let cacheDir: string;

    const source = (): AptSourceSpec => ({
        url: server.url,
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
    });

    const spec = (packages: AptLock): AptMirrorSpec => ({
        source: source(),
        packages,
        publish: { root, prefix: "debian", origin: "site" },
        signing: { privateKey: signing.keys[0]!.privateKeyArmored },
        concurrency: 2,
    });

    const lockFor = async (queries: string[]) =>
        (await resolveLock({ source: source(), queries, withDeps: true, cacheDir })).lock;

    const debOf = (name: string): BuiltDeb => upstream.debs("main").find((d) => d.name === name)!;
    /** The upstream pool paths of the packages whose verified downloads are in `dir`. */
    const downloadedPoolPaths = (dir: string): string[] =>
        debsBelow(dir)
            .map((name) => {
                const deb = upstream
                    .debs("main")
                    .find((d) => downloadName({ filename: upstream.poolPath("main", d), sha256: d.sha256 }) === name);
                assert.ok(deb !== undefined, `${name} in the downloads is no package of the upstream`);
                return upstream.poolPath("main", deb);
            })
            .sort();
    const urlPathOf = (deb: BuiltDeb) => `/${upstream.poolPath("main", deb)}`;

    const aptClient = () =>
        makeAptClient({
            sources: [
                { uri: `${mirrorServer.url}/debian`, suites: ["bookworm"], components: ["main"], signedBy: publicKey },
            ],
        });

    /** apt-get update with no warning and no Hash Sum mismatch, then install --download-only of `pkg`. */
    const aptInstall = async (pkg: string): Promise<string[]> => {
        const client = await aptClient();
        try {
            const update = await client.update();
            const text = update.stdout + update.stderr;
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(text, /Hash Sum mismatch|^(W|E|Err):/m, text);
            const install = await client.installDownloadOnly([pkg]);
            assert.ok(install.ok, describeAptResult(`apt-get install --download-only ${pkg}`, install));
            return install.files;
        } finally {
            await client.close();
        }
    };

    const writeJob = async (name: string, job: SyncChildJob): Promise<string> => {
        const file = join(work, `${name}.json`);
        await writeFile(file, JSON.stringify(job));
        return file;
    };

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            architectures: ["amd64"],
            signWith: "ed25519",
            components: { main: MAIN },
        });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("resume-root");
        repoDir = join(root, "debian");
        work = await makeTempDir("resume-work");
        cacheDir = await makeTempDir("resume-cache");
        mirrorServer = await startStaticServer(root);
        // Generation 1: only "base".
        const state = await syncMirror(spec(await lockFor(["base"])));
        assert.equal(state.packageCount, 1);
        publicKey = state.publicKey;
        assert.deepEqual(await aptInstall("base"), ["base_1.0-1_amd64.deb"]);
    });

    afterEach(() => {
        server.clearFaults();
        server.clearLog();
    });

    after(async () => {
        await mirrorServer?.close();
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("killed during the downloads: generation 1 stays, the next run downloads only what was not verified", async () => {
        const lock = await lockFor(["base", "app"]);
        assert.equal(Object.keys(lock).length, 10);
        const published = snapshotTree(repoDir, { identity: true });
        const downloads = downloadDir(spec(lock));
        const already = downloadedPoolPaths(downloads);
        assert.deepEqual(already, [upstream.poolPath("main", debOf("base"))]);

        server.fault(/\.deb$/, { delayMs: 400 });
        const child = startChild(await writeJob("downloads", { spec: spec(lock) }));
        // apt-get reads the mirror while the sync runs.
        const during = aptInstall("base");
        await waitFor(child, "three new packages are verified", () => downloadedPoolPaths(downloads).length >= 1 + 3);
        child.process.kill("SIGKILL");
        const exit = await child.exited;
        assert.equal(exit.signal, "SIGKILL", `the sync ended on its own first:\n${exit.stderr}`);
        assert.deepEqual(await during, ["base_1.0-1_amd64.deb"]);

        const verified = downloadedPoolPaths(downloads).filter((p) => !already.includes(p));
        assert.ok(verified.length >= 3 && verified.length < 9, `verified before the kill: ${verified.join(", ")}`);
        for (const rel of verified) {
            const deb = upstream.debs("main").find((d) => upstream.poolPath("main", d) === rel)!;
            const bytes = readFileSync(join(downloads, downloadName({ filename: rel, sha256: deb.sha256 })));
            assert.equal(createHash("sha256").update(bytes).digest("hex"), deb.sha256, `${rel} is not verified`);
        }
        assert.deepEqual(snapshotTree(repoDir, { identity: true }), published, "the published tree changed");
        assert.deepEqual(await aptInstall("base"), ["base_1.0-1_amd64.deb"]);

        server.clearFaults();
        server.clearLog();
        const state = await syncMirror(spec(lock));
        assert.equal(state.packageCount, 10);
        const fetched = server.requests.filter((r) => r.path.endsWith(".deb")).map((r) => r.path.slice(1));
        for (const rel of verified) {
            assert.ok(!fetched.includes(rel), `${rel} was verified before the kill and downloaded again`);
        }
        assert.deepEqual(
            [...fetched].sort(),
            upstream
                .debs("main")
                .map((d) => upstream.poolPath("main", d))
                .filter((p) => p !== already[0] && !verified.includes(p))
                .sort(),
            "each package not yet verified is downloaded once",
        );
        const installed = await aptInstall("app");
        assert.equal(installed.length, 9);
        assert.ok(installed.includes("app_2.0-1_amd64.deb"));
    });

    it("killed during the publish, with the new generation complete but not switched", async () => {
        await upstream.addDebs("main", [{ name: "newcomer", version: "0.1-1", size: PAYLOAD }]);
        const lock = await lockFor(["base", "app", "newcomer"]);
        assert.equal(lock["newcomer/amd64"], "0.1-1");
        const published = snapshotTree(repoDir, { identity: true });
        const servedBefore = basename(realpathSync(join(repoDir, "dists", "bookworm")));
        const marker = join(work, "before-switch");
        const child = startChild(await writeJob("publish", { spec: spec(lock), hangBeforeSwitch: marker }));
        await waitFor(child, "the publish reaches beforeSwitch", () => existsSync(marker));
        child.process.kill("SIGKILL");
        const exit = await child.exited;
        assert.equal(exit.signal, "SIGKILL", exit.stderr);

        // Everything that was there is there unchanged; what was added is not reachable by clients.
        const after = snapshotTree(repoDir, { identity: true });
        for (const [entry, value] of Object.entries(published)) {
            assert.equal(after[entry], value, `${entry} changed`);
        }
        const added = Object.keys(after).filter((entry) => !(entry in published));
        assert.ok(
            added.some((entry) => entry.startsWith(".generations/bookworm/")),
            `the new generation was built aside: ${added.join(", ")}`,
        );
        const aside = /^(pool\/|\.generations\/|\.staging(\/|$)|\.lock$)/;
        assert.deepEqual(
            added.filter((entry) => !aside.test(entry)),
            [],
            "only pool files and the unswitched generation may be added",
        );
        const client = await aptClient();
        try {
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(update.stdout + update.stderr, /Hash Sum mismatch|^(W|E|Err):/m);
            const policy = await client.cachePolicy("newcomer");
            assert.doesNotMatch(policy.stdout, /Candidate: 0\.1-1/, "the unswitched generation is visible");
        } finally {
            await client.close();
        }
        assert.equal((await aptInstall("app")).length, 9);

        server.clearLog();
        const state = await syncMirror(spec(lock));
        assert.equal(state.packageCount, 11);
        assert.deepEqual(
            server.requests.filter((r) => r.path.endsWith(".deb")),
            [],
            "every package was verified before the kill",
        );
        assert.equal(server.requestsFor(urlPathOf(debOf("newcomer"))).length, 0);
        assert.deepEqual(await aptInstall("newcomer"), ["newcomer_0.1-1_amd64.deb"]);
        // Left: the generation served now, and the one served before the kill (kept one publish
        // longer for clients that read it); not the one the killed run built.
        const generations = readdirSync(join(repoDir, ".generations", "bookworm")).sort();
        const servedNow = basename(realpathSync(join(repoDir, "dists", "bookworm")));
        assert.deepEqual(
            generations,
            [servedBefore, servedNow].sort(),
            `left-over generations: ${generations.join(", ")}`,
        );
        assert.ok(!existsSync(join(repoDir, ".lock")), "the lock of the killed run is left behind");
        assert.ok(!existsSync(join(repoDir, ".staging")) || readdirSync(join(repoDir, ".staging")).length === 0);
    });
});
