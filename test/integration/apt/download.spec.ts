import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { checkRequest, fetchPackageIndexes, fetchRelease } from "../../../provider/apt/fetch";
import { type DownloadProgress, downloadPackages } from "../../../provider/apt/download";
import type { PackageRecord } from "../../../provider/apt/types";
import { createDispatcher, getBytes } from "../../../provider/http/client";
import { downloadToFile } from "../../../provider/http/download";
import { loadPublicKeys } from "../../../provider/pgp/verify";
import { type AptRepo, buildRepo, type DebSpec, listFiles } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { expectCode } from "../../harness/expect";

const MAIN: DebSpec[] = [
    { name: "app", version: "1.0-1", depends: "libfoo1", size: 150_000 },
    { name: "libfoo1", version: "1.2-1", source: "libfoo", size: 20_000 },
    { name: "app-data", version: "1.0-1", arch: "all", size: 60_000 },
    { name: "tool", version: "2:0.9-3" },
    { name: "tool-extra", version: "0.9-3", source: "tool" },
    { name: "big", version: "1.0", size: 400_000 },
];

const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

describe("apt download: .deb files into the pool, verified and resumable", function () {
    this.timeout(300_000);

    let repo: AptRepo;
    let server: StaticServer;
    let packages: PackageRecord[];

    const poolRequests = () => server.requests.filter((r) => r.path.startsWith("/pool/")).map((r) => r.path);
    const pathOf = (name: string) => `/${packages.find((p) => p.name === name)!.filename}`;
    const download = (poolDir: string, extra: Partial<Parameters<typeof downloadPackages>[0]> = {}) =>
        downloadPackages({ baseUrl: server.url, packages, poolDir, retry: FAST_RETRY, ...extra });

    before(async () => {
        repo = await buildRepo({ distribution: "stable", components: { main: MAIN }, signWith: "ed25519" });
        server = await startStaticServer(repo.dir);
        const keys = await loadPublicKeys(repo.publicKeyArmored);
        const release = await fetchRelease({ url: server.url, distribution: "stable", keys });
        packages = (await fetchPackageIndexes({ release, ...checkRequest(release) })).packages;
        assert.equal(packages.length, MAIN.length);
    });

    after(async () => {
        await server?.close();
        await repo?.close();
        await cleanupAll();
    });

    afterEach(() => {
        server.clearFaults();
        server.clearLog();
    });

    it("downloads every package to <poolDir>/<Filename>, and a second run downloads nothing", async () => {
        const poolDir = await makeTempDir("pool");
        const progress: DownloadProgress[] = [];
        const first = await download(poolDir, { concurrency: 3, onProgress: (p) => progress.push(p) });
        const total = packages.reduce((n, p) => n + p.size, 0);
        assert.deepEqual(first, { downloaded: packages.length, downloadedBytes: total, reused: 0, reusedBytes: 0 });
        const upstream = (await listFiles(join(repo.dir, "pool"))).map((f) => `pool/${f}`);
        assert.deepEqual(await listFiles(poolDir), upstream);
        for (const deb of repo.debs("main")) {
            const rel = repo.poolPath("main", deb);
            assert.deepEqual(await readFile(join(poolDir, rel)), await readFile(deb.path));
        }
        const last = progress.at(-1)!;
        assert.equal(last.filesDone, packages.length);
        assert.equal(last.bytesDone, total);
        assert.equal(last.downloaded, packages.length);

        server.clearLog();
        const second = await download(poolDir);
        assert.deepEqual(second, { downloaded: 0, downloadedBytes: 0, reused: packages.length, reusedBytes: total });
        assert.deepEqual(poolRequests(), []);
    });

    it("rejects a .deb whose bytes do not match its SHA256 and leaves nothing in the pool", async () => {
        const poolDir = await makeTempDir("pool");
        const target = packages.find((p) => p.name === "libfoo1")!;
        const original = await readFile(join(repo.dir, target.filename));
        const tampered = Buffer.from(original);
        tampered[tampered.length - 100] ^= 0xff;
        server.fault(`/${target.filename}`, { replaceBody: tampered });
        const err = await expectCode(
            download(poolDir),
            "ERR_VERIFICATION",
            new RegExp(
                `^1 of ${packages.length} package files could not be downloaded from .*:\\n  ${target.filename}: GET ${server.url}/${target.filename}: SHA256 mismatch: expected ${target.sha256}, got [0-9a-f]{64}$`,
            ),
        );
        assert.ok(err.message.length > 0);
        assert.equal(server.requestsFor(`/${target.filename}`).length, 1, "a hash mismatch is not retried");
        const files = await listFiles(poolDir);
        assert.ok(!files.some((f) => f.includes("libfoo")), `left behind: ${files.join(", ")}`);
        assert.equal(files.length, packages.length - 1, "the other packages are still downloaded");

        // A body of the wrong size is refused before it is read.
        server.clearFaults();
        server.fault(`/${target.filename}`, { replaceBody: Buffer.concat([original, Buffer.from("x")]) });
        await expectCode(
            download(poolDir),
            "ERR_VERIFICATION",
            /size mismatch: expected \d+ bytes, the server announces \d+/,
        );
        assert.ok(!(await listFiles(poolDir)).some((f) => f.includes("libfoo")));
    });

    it("retries 500 answers, resets and truncated bodies", async () => {
        const poolDir = await makeTempDir("pool");
        server.fault(pathOf("app"), { status: 500, times: 2 });
        server.fault(pathOf("big"), { reset: true, times: 1 });
        server.fault(pathOf("app-data"), { truncate: 1000, times: 2 });
        const result = await download(poolDir, { concurrency: 2 });
        assert.equal(result.downloaded, packages.length);
        assert.equal(server.requestsFor(pathOf("app")).length, 3);
        assert.equal(server.requestsFor(pathOf("big")).length, 2);
        assert.equal(server.requestsFor(pathOf("app-data")).length, 3);
        for (const pkg of packages) {
            assert.equal((await stat(join(poolDir, pkg.filename))).size, pkg.size);
        }
    });

    it("fails clearly when a body stays truncated, leaving nothing in the pool", async () => {
        const poolDir = await makeTempDir("pool");
        server.fault(pathOf("big"), { truncate: 5000 });
        await expectCode(
            download(poolDir),
            "ERR_NETWORK",
            new RegExp(`${pathOf("big").slice(1)}: GET .*: failed after 3 attempts: .*`),
        );
        assert.equal(server.requestsFor(pathOf("big")).length, 3);
        const left = await listFiles(poolDir);
        assert.ok(!left.some((f) => f.includes("big")), `left behind: ${left.join(", ")}`);
    });

    it("does not retry 4xx: 404 is ERR_NOT_FOUND naming the URL, 403 fails at once", async () => {
        const poolDir = await makeTempDir("pool");
        server.fault(pathOf("tool"), { status: 404 });
        await expectCode(
            download(poolDir),
            "ERR_NOT_FOUND",
            new RegExp(`GET ${server.url}${pathOf("tool")}: HTTP 404`),
        );
        assert.equal(server.requestsFor(pathOf("tool")).length, 1);
        server.clearFaults();
        server.fault("/forbidden", { status: 403 });
        await expectCode(
            getBytes(`${server.url}/forbidden`, { retry: FAST_RETRY }),
            "ERR_NETWORK",
            /forbidden: HTTP 403/,
        );
        assert.equal(server.requestsFor("/forbidden").length, 1);
    });

    it("after a kill, downloads only the file that was partial and the one that is wrong", async () => {
        const poolDir = await makeTempDir("pool");
        await download(poolDir);
        const partial = packages.find((p) => p.name === "big")!;
        const wrong = packages.find((p) => p.name === "app")!;
        const shorter = packages.find((p) => p.name === "tool")!;
        // A kill during "big" leaves its temporary file (named for the killed process) and no pool file.
        const bigTarget = join(poolDir, partial.filename);
        const leftover = `.${partial.filename.split("/").pop()}.partial-4194999-00000000`;
        await writeFile(join(dirname(bigTarget), leftover), Buffer.alloc(1234, 1));
        await (await import("node:fs/promises")).rm(bigTarget);
        // A pool file of the right size with other bytes, and one cut short.
        const appBytes = await readFile(join(poolDir, wrong.filename));
        appBytes[10] ^= 0xff;
        await writeFile(join(poolDir, wrong.filename), appBytes);
        const toolBytes = await readFile(join(poolDir, shorter.filename));
        await writeFile(join(poolDir, shorter.filename), toolBytes.subarray(0, 100));
        server.clearLog();

        const result = await download(poolDir);
        assert.equal(result.downloaded, 3);
        assert.equal(result.reused, packages.length - 3);
        assert.deepEqual(poolRequests().sort(), [pathOf("app"), pathOf("big"), pathOf("tool")].sort());
        for (const pkg of [partial, wrong, shorter]) {
            assert.deepEqual(await readFile(join(poolDir, pkg.filename)), await readFile(join(repo.dir, pkg.filename)));
        }
        // None of this run's temporary files is left; the killed run's is not used (its owner's
        // collection removes it: syncMirror collects every download the lock does not name).
        const names = await readdir(dirname(bigTarget));
        assert.deepEqual(
            names.filter((n) => n.includes(".partial-")),
            [leftover],
        );
    });

    it("reports progress periodically, not per file, over a bounded number of connections", async () => {
        const poolDir = await makeTempDir("pool");
        server.fault(/^\/pool\//, { delayMs: 150 });
        const progress: DownloadProgress[] = [];
        const started = Date.now();
        await download(poolDir, { concurrency: 2, progressIntervalMs: 100, onProgress: (p) => progress.push(p) });
        const elapsed = Date.now() - started;
        // Six files, two at a time, each answered after 150 ms.
        assert.ok(elapsed >= 3 * 150, `took ${elapsed} ms: more than 2 downloads ran at once`);
        assert.ok(progress.length >= 2, `${progress.length} progress reports`);
        assert.ok(progress.length <= Math.ceil(elapsed / 100) + 1, `${progress.length} reports in ${elapsed} ms`);
        const last = progress.at(-1)!;
        assert.equal(last.filesDone, packages.length);
        assert.equal(last.filesTotal, packages.length);
        assert.ok(progress.every((p, i) => i === 0 || p.bytesReceived >= progress[i - 1]!.bytesReceived));
        assert.ok(progress.some((p) => p.bytesPerSecond > 0));
    });

    it("uses the dispatcher it is given", async () => {
        const poolDir = await makeTempDir("pool");
        const dispatcher = createDispatcher({ connections: 1 });
        let dispatched = 0;
        const counting = dispatcher.compose((dispatch) => (opts, handler) => {
            dispatched++;
            return dispatch(opts, handler);
        });
        try {
            const result = await download(poolDir, { dispatcher: counting, concurrency: 3 });
            assert.equal(result.downloaded, packages.length);
            assert.equal(dispatched, packages.length);
        } finally {
            await dispatcher.close();
        }
    });

    it("refuses a Filename outside the pool before downloading anything", async () => {
        const poolDir = await makeTempDir("pool");
        const evil = { filename: "pool/../../outside.deb", size: 1, sha256: "0".repeat(64) };
        await expectCode(
            downloadPackages({ baseUrl: server.url, packages: [...packages, evil], poolDir }),
            "ERR_INVALID_ARGUMENT",
            /^packages\[6\]\.filename: "pool\/\.\.\/\.\.\/outside\.deb" contains a "\.\." segment/,
        );
        assert.deepEqual(poolRequests(), []);
    });

    // Bodies up to memoryLimit are checked in memory, larger ones stream to a temporary file:
    // both paths must leave the target alone on a mismatch and place it only when it matches.
    for (const [label, memoryLimit] of [
        ["held in memory", undefined],
        ["streamed to a temporary file", 0],
    ] as const) {
        it(`downloadToFile (${label}): replaces a target only with verified content`, async () => {
            const dir = await makeTempDir("dl");
            const pkg = packages.find((p) => p.name === "libfoo1")!;
            const target = join(dir, "x.deb");
            await mkdir(dir, { recursive: true });
            await writeFile(target, "old");
            await expectCode(
                downloadToFile(`${server.url}/${pkg.filename}`, target, {
                    expected: { size: pkg.size, sha256: "a".repeat(64) },
                    memoryLimit,
                }),
                "ERR_VERIFICATION",
                new RegExp(`SHA256 mismatch: expected ${"a".repeat(64)}, got ${pkg.sha256}`),
            );
            assert.equal(await readFile(target, "utf8"), "old");
            assert.deepEqual(await readdir(dir), ["x.deb"]);
            server.fault(`/${pkg.filename}`, { truncate: 10, times: 1 });
            const result = await downloadToFile(`${server.url}/${pkg.filename}`, target, {
                expected: pkg,
                memoryLimit,
                retry: FAST_RETRY,
            });
            assert.deepEqual(result, { bytesReceived: pkg.size + 10, attempts: 2 });
            assert.deepEqual(await readFile(target), await readFile(join(repo.dir, pkg.filename)));
            assert.deepEqual(await readdir(dir), ["x.deb"], "a temporary file was left behind");
        });
    }
});
