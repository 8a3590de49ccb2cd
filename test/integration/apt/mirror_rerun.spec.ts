import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
    cpSync,
    existsSync,
    readdirSync,
    readFileSync,
    realpathSync,
    rmSync,
    symlinkSync,
    utimesSync,
    writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import {
    type AptLock,
    type AptMirrorSpec,
    type AptSourceSpec,
    downloadDir,
    hashMemoFile,
    removeMirror,
    resolveLock,
    suiteStampFile,
    syncMirror,
} from "../../../provider/apt/mirror";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

/**
 * Re-runs that change nothing: the lock cache (a resolve against the same signed Release reads
 * no index) and the sync stamp (a sync with the same inputs over an intact published suite
 * contacts nobody and writes nothing), and every way such a re-run must still do the work.
 */

function sha256Of(file: string): string {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
}

describe("AptMirror re-runs: lock cache and sync stamp", function () {
    this.timeout(120_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    let repoDir: string;
    let cacheDir: string;

    const source = (): AptSourceSpec => ({
        url: server.url,
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
    });
    const spec = (packages: AptLock, origin = "site"): AptMirrorSpec => ({
        source: source(),
        packages,
        publish: { root, prefix: "debian", origin },
        signing: { privateKey: signing.keys[0]!.privateKeyArmored },
    });
    const indexRequests = () => server.requests.filter((r) => /\/Packages(\.\w+)?$|\/by-hash\//.test(r.path));
    /** The directory behind dists/bookworm. */
    const suiteDir = () => realpathSync(join(repoDir, "dists", "bookworm"));

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            architectures: ["amd64"],
            components: {
                main: [
                    { name: "base", version: "1.0-1", size: 20_000 },
                    { name: "libx1", version: "1.0-1", size: 30_000 },
                    { name: "app", version: "1.0-1", depends: "libx1 (>= 1.0)", size: 40_000 },
                ],
            },
        });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("rerun-root");
        repoDir = join(root, "debian");
        cacheDir = await makeTempDir("rerun-cache");
    });

    afterEach(() => {
        server.clearLog();
    });

    after(async () => {
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    describe("resolveLock", () => {
        it("answers the same signed Release, queries and options from the cache, without reading an index", async () => {
            const first = await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir });
            assert.ok(first.upstream !== undefined, "the first resolve reads the indexes");
            assert.deepEqual(first.lock, { "app/amd64": "1.0-1", "libx1/amd64": "1.0-1" });
            assert.ok(indexRequests().length > 0, "the first resolve fetched no index");

            server.clearLog();
            const second = await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir });
            assert.equal(second.upstream, undefined, "the indexes were read again");
            assert.deepEqual(second.lock, first.lock);
            assert.deepEqual(indexRequests(), [], "an index was fetched");
            assert.ok(second.release.signedBy !== undefined, "the Release was not verified");
            assert.deepEqual(
                server.requests.map((r) => r.path),
                ["/dists/bookworm/InRelease"],
            );
        });

        it("resolves again for other queries or options", async () => {
            const without = await resolveLock({ source: source(), queries: ["app"], withDeps: false, cacheDir });
            assert.ok(without.upstream !== undefined, "withDeps: false was answered from the cache of withDeps: true");
            assert.deepEqual(without.lock, { "app/amd64": "1.0-1" });
            const other = await resolveLock({ source: source(), queries: ["base"], withDeps: true, cacheDir });
            assert.ok(other.upstream !== undefined);
            assert.deepEqual(other.lock, { "base/amd64": "1.0-1" });
        });

        it("ignores a damaged cache entry and resolves again", async () => {
            const locks = join(cacheDir, "locks");
            for (const name of readdirSync(locks)) {
                writeFileSync(join(locks, name), "{ not json");
            }
            const again = await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir });
            assert.ok(again.upstream !== undefined);
            assert.deepEqual(again.lock, { "app/amd64": "1.0-1", "libx1/amd64": "1.0-1" });
            for (const name of readdirSync(locks)) {
                writeFileSync(join(locks, name), JSON.stringify({ "app/amd64": 7 }));
            }
            const typed = await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir });
            assert.ok(typed.upstream !== undefined, "a lock with a non-string version was used");
            assert.deepEqual(typed.lock, again.lock);
        });
    });

    describe("cache housekeeping", () => {
        it("entries unused for two weeks go; entries in use, even old ones, stay", async () => {
            const dir = await makeTempDir("rerun-prune");
            await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir: dir });
            const listing = (sub: string) => readdirSync(join(dir, sub)).sort();
            const used = { packages: listing("packages"), locks: listing("locks"), verified: listing("verified") };
            for (const [sub, names] of Object.entries(used)) {
                assert.ok(names.length > 0, `nothing cached in ${sub}`);
            }
            const month = new Date(Date.now() - 30 * 24 * 3600 * 1000);
            const aged = (sub: string, name: string) => {
                writeFileSync(join(dir, sub, name), "stale");
                utimesSync(join(dir, sub, name), month, month);
            };
            // Stale entries of upstreams no longer read, and the used entries made to look old.
            aged("packages", "0".repeat(64));
            aged("locks", `${"1".repeat(64)}.json`);
            aged("verified", `${"2".repeat(64)}.json`);
            for (const [sub, names] of Object.entries(used)) {
                for (const name of names) utimesSync(join(dir, sub, name), month, month);
            }
            // A full read of the upstream (another query) uses the same index and prunes.
            await resolveLock({ source: source(), queries: ["base"], withDeps: true, cacheDir: dir });
            assert.deepEqual(listing("packages"), used.packages, "the index in use was pruned, or a stale one kept");
            assert.ok(!listing("locks").includes(`${"1".repeat(64)}.json`), "a stale lock was kept");
            assert.ok(!listing("verified").includes(`${"2".repeat(64)}.json`), "a stale verification was kept");
            assert.ok(listing("verified").length >= 1, "the verification in use was pruned");
        });
    });

    describe("syncMirror", () => {
        let lock: AptLock;
        let published: Record<string, string>;

        before(async () => {
            lock = (await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir })).lock;
        });

        it("a second sync with the same inputs over an intact suite contacts nobody and changes nothing", async () => {
            const first = await syncMirror(spec(lock));
            published = snapshotTree(repoDir, { identity: true });
            server.clearLog();
            const second = await syncMirror(spec(lock));
            assert.deepEqual(server.requests, [], "the upstream was contacted");
            assert.deepEqual(second, first);
            assert.deepEqual(snapshotTree(repoDir, { identity: true }), published, "the published tree changed");
        });

        it("keeps no secret in the stamp", () => {
            const text = readFileSync(suiteStampFile(spec(lock)), "utf8");
            const keyLines = signing.keys[0]!.privateKeyArmored.split("\n").filter((l) =>
                /^[A-Za-z0-9+/]{40,}$/.test(l),
            );
            assert.ok(keyLines.length > 3, "the test key has no body lines to look for");
            for (const line of keyLines) {
                assert.ok(!text.includes(line), "a line of the private key is in the stamp");
            }
            assert.doesNotMatch(text, /PRIVATE KEY/);
        });

        it("a tampered pool file: the next sync runs in full and restores it", async () => {
            const poolFile = join(repoDir, "pool/main/libx/libx1/libx1_1.0-1_amd64.deb");
            const good = sha256Of(poolFile);
            const bytes = readFileSync(poolFile);
            bytes[bytes.length - 1] ^= 0xff;
            rmSync(poolFile);
            writeFileSync(poolFile, bytes);
            await syncMirror(spec(lock));
            assert.ok(server.requests.length > 0, "the sync trusted its stamp over the altered file");
            assert.equal(sha256Of(poolFile), good, "the pool file was not repaired");
        });

        it("a missing index or signature: the next sync runs in full and publishes them again", async () => {
            for (const name of ["main/binary-amd64/Packages.gz", "InRelease"]) {
                rmSync(join(suiteDir(), name));
                server.clearLog();
                await syncMirror(spec(lock));
                assert.ok(server.requests.length > 0, `the sync did not notice ${name} missing`);
                assert.ok(existsSync(join(repoDir, "dists/bookworm", name)), `${name} was not published again`);
            }
        });

        it("another generation behind dists/, even with the same files, means a full sync", async () => {
            await syncMirror(spec(lock));
            const current = suiteDir();
            const copy = join(repoDir, ".generations", "bookworm", "copied-by-hand");
            cpSync(current, copy, { recursive: true });
            const link = join(repoDir, "dists", "bookworm");
            rmSync(link);
            symlinkSync(relative(join(repoDir, "dists"), copy), link);
            server.clearLog();
            await syncMirror(spec(lock));
            assert.ok(server.requests.length > 0, "the stamp was trusted for a suite it did not record");
            assert.ok(existsSync(join(repoDir, "dists/bookworm/InRelease")));
        });

        it("other inputs, or no stamp, mean a full sync", async () => {
            await syncMirror(spec(lock, "elsewhere"));
            assert.ok(server.requests.length > 0, "a new origin was answered from the stamp");
            assert.match(readFileSync(join(repoDir, "dists/bookworm/Release"), "utf8"), /^Origin: elsewhere$/m);

            server.clearLog();
            rmSync(suiteStampFile(spec(lock)));
            await syncMirror(spec(lock, "elsewhere"));
            assert.ok(server.requests.length > 0, "a sync without a stamp skipped the upstream");
            assert.ok(existsSync(suiteStampFile(spec(lock))), "the full sync wrote no stamp");
        });

        it("removeMirror removes the stamp, the downloads and the hash memo with the mirror", async () => {
            const publish = spec(lock);
            assert.ok(existsSync(hashMemoFile(publish)), "the sync kept no hash memo to remove");
            assert.ok(existsSync(downloadDir(publish)), "the sync kept no downloads to remove");
            await removeMirror(spec(lock));
            assert.ok(!existsSync(suiteStampFile(spec(lock))));
            assert.ok(!existsSync(repoDir));
            assert.ok(!existsSync(downloadDir(publish)));
            assert.ok(!existsSync(hashMemoFile(publish)));
        });
    });
});
