import assert from "node:assert/strict";
import { cpSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
    type AptMirrorSpec,
    type AptMirrorState,
    type AptSourceSpec,
    resolveLock,
    resolveProgramLock,
    syncMirror,
} from "../../../provider/apt/mirror";
import { operations } from "../../../provider/apt/operations";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { expectCode } from "../../harness/expect";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

/**
 * Replay and key trust against a real upstream built with apt-ftparchive and signed by gpg:
 * an older (still correctly signed) Release served after a newer one was synced is refused by
 * `check` unless `allowDowngrade`, and `source.keyFingerprints` decides which of the keys given
 * may verify the Release.
 */

describe("AptMirror replay and key trust", function () {
    this.timeout(180_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let signing: GpgKeyring;
    let other: GpgKeyring;
    let root: string;
    let oldDists: string;
    let newDists: string;

    const source = (over: Partial<AptSourceSpec> = {}): AptSourceSpec => ({
        url: server.url,
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
        ...over,
    });
    /** What the SDK passes: the lock resolved now, with its upstream Release date. */
    const resolvedSpec = async (over: Partial<AptMirrorSpec> = {}): Promise<AptMirrorSpec> => {
        const lock = await resolveProgramLock({ source: source(), queries: ["app"], publish: { root }, dryRun: true });
        return {
            source: source(),
            packages: lock.packages,
            upstreamDate: lock.upstreamDate,
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            ...over,
        };
    };
    /** Serves the dists/ saved in `dir` as upstream's. */
    const serveDists = (dir: string) => {
        rmSync(join(upstream.dir, "dists"), { recursive: true, force: true });
        cpSync(dir, join(upstream.dir, "dists"), { recursive: true });
    };
    /** The published tree and the engine state beside it, less the shared caches. */
    const published = () => ({
        root: snapshotTree(root, { identity: true }),
        state: Object.fromEntries(
            Object.entries(snapshotTree(`${root}.airgap`, { identity: true })).filter(
                ([k]) => !k.startsWith("indexes"),
            ),
        ),
    });
    const inputsOf = (state: AptMirrorState): AptMirrorSpec => {
        const { packageCount, bytes, releaseSha256, publishedPath, publicKey, drift, ...inputs } = state;
        return inputs;
    };

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "app", version: "1.0-1", size: 10_000 }] },
        });
        const work = await makeTempDir("trust-dists");
        oldDists = join(work, "old");
        newDists = join(work, "new");
        cpSync(join(upstream.dir, "dists"), oldDists, { recursive: true });
        // Release dates have a resolution of one second.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await upstream.addDebs("main", [{ name: "app", version: "1.1-1", size: 10_000 }]);
        cpSync(join(upstream.dir, "dists"), newDists, { recursive: true });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        other = await makeGpgKeyring(["ed25519"]);
        root = await makeTempDir("trust-root");
    });

    after(async () => {
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await other?.close();
        await cleanupAll();
    });

    describe("allowDowngrade", () => {
        let synced: AptMirrorState;

        before(async () => {
            serveDists(newDists);
            synced = await syncMirror(await resolvedSpec());
        });

        it("the lock and the state carry the upstream Release date", async () => {
            assert.deepEqual(synced.packages, { "app/amd64": "1.1-1" });
            assert.match(synced.upstreamDate ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
            assert.equal(synced.syncedReleaseDate, synced.upstreamDate);
        });

        it("an older signed Release served after it fails check naming allowDowngrade, the dates and the suite; nothing is touched", async () => {
            serveDists(oldDists);
            try {
                const before = published();
                const news = await resolvedSpec();
                assert.deepEqual(news.packages, { "app/amd64": "1.0-1" }, "the old Release was not served");
                assert.ok(news.upstreamDate! < synced.upstreamDate!, `${news.upstreamDate} ${synced.upstreamDate}`);

                const checked = await operations.check(inputsOf(synced), news);
                assert.equal(checked.failures.length, 1, JSON.stringify(checked.failures));
                const failure = checked.failures[0]!;
                assert.equal(failure.property, "allowDowngrade");
                assert.ok(failure.reason.includes('Release of "bookworm"'), failure.reason);
                assert.ok(failure.reason.includes(news.upstreamDate!), failure.reason);
                assert.ok(failure.reason.includes(synced.upstreamDate!), failure.reason);
                assert.match(failure.reason, /check source, or set allowDowngrade: true/);
                assert.deepEqual(published(), before, "the published tree changed");
            } finally {
                serveDists(newDists);
            }
        });

        it("a sync whose upstream went back behind the lock's date refuses before touching the tree", async () => {
            // The lock was resolved from the newer Release; upstream serves the older by sync time.
            const spec = { ...(await resolvedSpec()), publish: { root, prefix: "debian", origin: "site" } };
            serveDists(oldDists);
            try {
                const before = published();
                await expectCode(
                    syncMirror(spec),
                    "ERR_VERIFICATION",
                    /^allowDowngrade: the upstream Release of "bookworm" fetched for this sync is dated .* older than .* \(the one the lock was resolved from\)/,
                );
                assert.deepEqual(published(), before, "the published tree changed");
            } finally {
                serveDists(newDists);
            }
        });

        it("with allowDowngrade: true the older Release goes through and is published", async () => {
            serveDists(oldDists);
            const news = await resolvedSpec({ allowDowngrade: true });
            assert.deepEqual((await operations.check(inputsOf(synced), news)).failures, []);
            const state = await syncMirror(news);
            assert.deepEqual(state.packages, { "app/amd64": "1.0-1" });
            assert.equal(state.syncedReleaseDate, news.upstreamDate);
            serveDists(newDists);
        });
    });

    describe("source.keyFingerprints", () => {
        const both = () => `${upstream.publicKeyArmored}\n${other.publicKeysArmored}`;
        const spaced = (fpr: string) => fpr.toLowerCase().replace(/(.{4})/g, "$1 ");

        it("the signing key's fingerprint (spaced, lower case) lets it verify among other keys", async () => {
            const { release } = await resolveLock({
                source: source({ key: both(), keyFingerprints: [spaced(upstream.fingerprints[0]!)] }),
                queries: ["app"],
            });
            assert.equal(release.signedBy?.fingerprint, upstream.fingerprints[0]);
        });

        it("another key's fingerprint: the signing key given is ignored, and the error names source.keyFingerprints and the keys seen", async () => {
            const cacheDir = await makeTempDir("trust-cache");
            // A verification remembered without pins must not answer for pinned keys.
            await resolveLock({ source: source({ key: both() }), queries: ["app"], cacheDir });
            const err = await expectCode(
                resolveLock({
                    source: source({ key: both(), keyFingerprints: [other.keys[0]!.fingerprint] }),
                    queries: ["app"],
                    cacheDir,
                }),
                "ERR_VERIFICATION",
                /^source\.keyFingerprints: InRelease from .* no valid signature by a given key/,
            );
            assert.equal((err as { argument?: string }).argument, "source.keyFingerprints");
            assert.ok(err.message.includes(upstream.fingerprints[0]!), err.message);
            assert.ok(err.message.includes(`listed ${other.keys[0]!.fingerprint}`), err.message);
        });

        it("no listed key among those given is refused naming source.keyFingerprints", async () => {
            await expectCode(
                resolveLock({
                    source: source({ keyFingerprints: [other.keys[0]!.fingerprint] }),
                    queries: ["app"],
                }),
                "ERR_VERIFICATION",
                new RegExp(
                    `^source\\.keyFingerprints: none of the keys given .* is listed: keys given ${upstream.fingerprints[0]}; listed ${other.keys[0]!.fingerprint}$`,
                ),
            );
        });

        it("a malformed fingerprint is refused naming its argument before upstream is asked", async () => {
            server.clearLog();
            await expectCode(
                resolveLock({ source: source({ keyFingerprints: ["1234 abcd"] }), queries: ["app"] }),
                "ERR_INVALID_ARGUMENT",
                /^source\.keyFingerprints\[0\]: "1234 abcd" is not a key fingerprint/,
            );
            assert.deepEqual(server.requests, []);
        });
    });

    describe("source.keyUrl", () => {
        it("file:// is read; http:// is refused unless pinned, then used", async () => {
            const keyPath = upstream.publicKeyPath!;
            const viaFile = await resolveLock({
                source: source({ key: undefined, keyUrl: pathToFileURL(keyPath).href }),
                queries: ["app"],
            });
            assert.equal(viaFile.release.signedBy?.fingerprint, upstream.fingerprints[0]);

            const keyServer = await startStaticServer(join(keyPath, ".."));
            try {
                const keyUrl = `${keyServer.url}/${keyPath.split("/").pop()}`;
                await expectCode(
                    resolveLock({ source: source({ key: undefined, keyUrl }), queries: ["app"] }),
                    "ERR_INVALID_ARGUMENT",
                    /^source\.keyUrl: .* is fetched in clear: use https:\/\/ or file:\/\/, or pin the key with source\.keyFingerprints$/,
                );
                assert.deepEqual(keyServer.requests, [], "the key was fetched in clear");
                const pinned = await resolveLock({
                    source: source({ key: undefined, keyUrl, keyFingerprints: [upstream.fingerprints[0]!] }),
                    queries: ["app"],
                });
                assert.equal(pinned.release.signedBy?.fingerprint, upstream.fingerprints[0]);
            } finally {
                await keyServer.close();
            }
        });
    });
});
