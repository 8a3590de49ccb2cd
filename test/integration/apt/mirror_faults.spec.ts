import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import {
    type AptLock,
    type AptMirrorSpec,
    type AptMirrorState,
    type AptSourceSpec,
    downloadDir,
    downloadName,
    resolveLock,
    syncMirror,
} from "../../../provider/apt/mirror";
import { operations } from "../../../provider/apt/operations";
import { type AirgapErrorCode, hasCode } from "../../../provider/errors";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type DebSpec, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

/**
 * A mirror that is already published meets an upstream (or inputs) that went wrong. Every next
 * sync must fail with an error naming the argument or URL, and leave the published repository
 * exactly as it was: the whole `<root>/<prefix>` tree is compared byte for byte, and apt-get
 * still updates and installs from it with signature checking on.
 */

const MAIN: DebSpec[] = [
    { name: "app", version: "1.0-1", depends: "libfoo1 (>= 1.0), base-files" },
    { name: "libfoo1", version: "1.2-1", source: "libfoo" },
    { name: "base-files", version: "1:0.9-1", arch: "all" },
    { name: "unrelated", version: "3.0-1", size: 40_000 },
];

/** The same bytes with one byte changed in the middle: same size, other SHA256. */
function flipOneByte(bytes: Buffer): Buffer {
    const out = Buffer.from(bytes);
    const at = Math.floor(out.length / 2);
    out[at] = out[at]! ^ 0xff;
    return out;
}

describe("AptMirror faults: a failed sync leaves the published repository as it was", function () {
    this.timeout(300_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    let repoDir: string;
    let mirrorServer: StaticServer;
    let generation1: AptMirrorState;
    /** The lock the next sync asks for: generation 1 plus one more package. */
    let nextLock: AptLock;
    /** The published tree when the test started. */
    let published: Record<string, string>;

    const source = (changes: Partial<AptSourceSpec> = {}): AptSourceSpec => ({
        url: server.url,
        distribution: "bookworm",
        components: ["main"],
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
        ...changes,
    });

    const spec = (changes: Partial<AptMirrorSpec> = {}): AptMirrorSpec => ({
        source: source(),
        packages: nextLock,
        publish: { root, prefix: "debian", origin: "site" },
        signing: { privateKey: signing.keys[0]!.privateKeyArmored },
        concurrency: 2,
        ...changes,
    });

    /** Real apt-get, with our public key as Signed-By: update and fetch `app` with its dependencies. */
    const assertAptInstalls = async (): Promise<void> => {
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/debian`,
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: generation1.publicKey,
                },
            ],
        });
        try {
            const update = await client.update();
            const updateText = update.stdout + update.stderr;
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(updateText, /Hash Sum mismatch|^(W|E|Err):/m, updateText);
            const install = await client.installDownloadOnly(["app"]);
            assert.ok(install.ok, describeAptResult("apt-get install --download-only app", install));
            assert.deepEqual(install.files, [
                "app_1.0-1_amd64.deb",
                "base-files_1%3a0.9-1_all.deb",
                "libfoo1_1.2-1_amd64.deb",
            ]);
        } finally {
            await client.close();
        }
    };

    /**
     * Awaits the failure, checks its code and message, then checks the published tree is
     * byte-identical to what it was before the test and that apt-get still installs from it.
     */
    const expectFailure = async (attempt: Promise<unknown>, code: AirgapErrorCode, pattern: RegExp) => {
        let caught: (Error & { argument?: string }) | undefined;
        await assert.rejects(attempt, (err: Error) => {
            caught = err;
            assert.ok(hasCode(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${err.message}`);
            assert.match(err.message, pattern);
            return true;
        });
        assert.deepEqual(snapshotTree(repoDir, { identity: true }), published, "the published tree changed");
        await assertAptInstalls();
        return caught!;
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
        root = await makeTempDir("faults-root");
        repoDir = join(root, "debian");
        mirrorServer = await startStaticServer(root);
        const cacheDir = await makeTempDir("faults-cache");
        const first = await resolveLock({ source: source(), queries: ["app"], withDeps: true, cacheDir });
        assert.deepEqual(first.lock, {
            "app/amd64": "1.0-1",
            "base-files/all": "1:0.9-1",
            "libfoo1/amd64": "1.2-1",
        });
        generation1 = await syncMirror(spec({ packages: first.lock }));
        nextLock = (await resolveLock({ source: source(), queries: ["app", "unrelated"], withDeps: true, cacheDir }))
            .lock;
        assert.equal(Object.keys(nextLock).length, 4);
    });

    beforeEach(() => {
        published = snapshotTree(repoDir, { identity: true });
        assert.ok(Object.keys(published).some((p) => p.startsWith("pool/")));
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

    it("generation 1 is published and apt-get installs from it", async () => {
        assert.equal(generation1.packageCount, 3);
        assert.match(generation1.publicKey, /BEGIN PGP PUBLIC KEY BLOCK/);
        await assertAptInstalls();
    });

    describe("the upstream Release", () => {
        it("the wrong upstream key: names the InRelease URL and the key given", async () => {
            const err = await expectFailure(
                syncMirror(spec({ source: source({ key: signing.publicKeysArmored }) })),
                "ERR_VERIFICATION",
                new RegExp(`InRelease from ${server.url}/dists/bookworm/InRelease: no valid signature by a given key`),
            );
            assert.match(err.message, new RegExp(signing.keys[0]!.fingerprint));
        });

        it("a bad signature: an InRelease altered in transit", async () => {
            const inRelease = await readFile(upstream.inReleasePath, "utf8");
            assert.ok(inRelease.includes("Suite: bookworm"));
            server.fault("/dists/bookworm/InRelease", {
                replaceBody: Buffer.from(inRelease.replace("Suite: bookworm", "Suite: bookw0rm")),
            });
            await expectFailure(
                syncMirror(spec()),
                "ERR_VERIFICATION",
                new RegExp(`InRelease from ${server.url}/dists/bookworm/InRelease: .*does not verify`),
            );
        });

        it("an unsigned upstream without allowUnsigned", async () => {
            server.fault("/dists/bookworm/InRelease", { status: 404 });
            server.fault("/dists/bookworm/Release.gpg", { status: 404 });
            await expectFailure(
                syncMirror(spec()),
                "ERR_VERIFICATION",
                new RegExp(
                    `^${server.url}/dists/bookworm/Release is not signed \\(no InRelease, no Release\\.gpg\\): set allowUnsigned`,
                ),
            );
        });

        it("no upstream key at all, without allowUnsigned: names source.key", async () => {
            const err = await expectFailure(
                syncMirror(spec({ source: source({ key: undefined }) })),
                "ERR_INVALID_ARGUMENT",
                /^source\.key: give the upstream's public key/,
            );
            assert.equal(err.argument, "source.key");
        });
    });

    describe("indexes and package files that do not match the signed hashes", () => {
        it("a Packages index whose SHA256 does not match the Release", async () => {
            const cacheDir = await makeTempDir("faults-empty-cache");
            for (const name of ["Packages", "Packages.gz", "Packages.xz"]) {
                const bytes = await readFile(join(upstream.distDir, "main/binary-amd64", name));
                server.fault(`/dists/bookworm/main/binary-amd64/${name}`, { replaceBody: flipOneByte(bytes) });
            }
            await expectFailure(
                syncMirror(spec(), { cacheDir }),
                "ERR_VERIFICATION",
                new RegExp(
                    `^index main/binary-amd64/Packages(\\.gz|\\.xz)? of ${server.url}/dists/bookworm: GET ${server.url}/dists/bookworm/main/binary-amd64/Packages\\S*: SHA256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}$`,
                ),
            );
        });

        it("a .deb whose SHA256 does not match its index record", async () => {
            const deb = upstream.debs("main").find((d) => d.name === "unrelated")!;
            const pool = `/${upstream.poolPath("main", deb)}`;
            server.fault(pool, { replaceBody: flipOneByte(await readFile(deb.path)) });
            await expectFailure(
                syncMirror(spec()),
                "ERR_VERIFICATION",
                new RegExp(
                    `1 of 4 package files could not be downloaded from ${server.url}:\\n  ${pool.slice(1)}: GET ${server.url}${pool}: SHA256 mismatch: expected ${deb.sha256}, got [0-9a-f]{64}`,
                ),
            );
            assert.equal(server.requestsFor(pool).length, 1, "a hash mismatch is not retried");
        });

        describe("a signed index whose Filename leaves the pool", () => {
            let hostile: AptRepo;
            let hostileServer: StaticServer;

            before(async () => {
                // Signed with the upstream's own key: only the index content is hostile.
                hostile = await buildRepo({
                    distribution: "bookworm",
                    architectures: ["amd64"],
                    keyring: upstream.keyring,
                    components: { main: MAIN },
                });
                const packages = await readFile(join(hostile.distDir, "main/binary-amd64/Packages"), "utf8");
                const evil = [
                    "Package: evil",
                    "Version: 1.0",
                    "Architecture: amd64",
                    "Filename: pool/main/e/evil/../../../../../../etc/cron.d/evil.deb",
                    "Size: 10",
                    `SHA256: ${"0".repeat(64)}`,
                    "Description: escapes the pool",
                    "",
                ].join("\n");
                await hostile.replaceIndex("main", "amd64", `${packages.trimEnd()}\n\n${evil}`);
                hostileServer = await startStaticServer(hostile.dir);
            });

            after(async () => {
                await hostileServer?.close();
                await hostile?.close();
            });

            it("is refused while reading the index, before anything is downloaded", async () => {
                const cacheDir = await makeTempDir("faults-hostile-cache");
                await expectFailure(
                    syncMirror(
                        spec({
                            source: source({ url: hostileServer.url }),
                            packages: { ...nextLock, "evil/amd64": "1.0" },
                        }),
                        { cacheDir },
                    ),
                    "ERR_PARSE",
                    new RegExp(
                        `^index main/binary-amd64/Packages(\\.gz|\\.xz)? of ${hostileServer.url}/dists/bookworm: package "evil": field Filename ".*" contains a "\\.\\." segment`,
                    ),
                );
                assert.deepEqual(
                    hostileServer.requests.filter((r) => r.path.endsWith(".deb")),
                    [],
                    "nothing may be downloaded from a hostile index",
                );
            });
        });
    });

    describe("what the source and the queries ask for", () => {
        it("an unknown distribution names it and the URL", async () => {
            const pattern = new RegExp(
                `^distribution "trixie" not found at ${server.url}: neither ${server.url}/dists/trixie/InRelease nor ${server.url}/dists/trixie/Release exists`,
            );
            await expectFailure(
                resolveLock({ source: source({ distribution: "trixie" }), queries: ["app"] }),
                "ERR_NOT_FOUND",
                pattern,
            );
            await expectFailure(
                syncMirror(spec({ source: source({ distribution: "trixie" }) })),
                "ERR_NOT_FOUND",
                pattern,
            );
        });

        it("an unknown component lists the components upstream offers", async () => {
            const pattern =
                /^source\.components\[0\]: "contrib" is not offered by .*\/dists\/bookworm; it offers main$/;
            const err = await expectFailure(
                resolveLock({ source: source({ components: ["contrib"] }), queries: ["app"] }),
                "ERR_INVALID_ARGUMENT",
                pattern,
            );
            assert.equal(err.argument, "source.components[0]");
            await expectFailure(
                syncMirror(spec({ source: source({ components: ["main", "contrib"] }) })),
                "ERR_INVALID_ARGUMENT",
                /^source\.components\[1\]: "contrib" is not offered by .*; it offers main$/,
            );
        });

        it("an unknown architecture lists the architectures upstream offers", async () => {
            const err = await expectFailure(
                resolveLock({ source: source({ architectures: ["arm64"] }), queries: ["app"] }),
                "ERR_INVALID_ARGUMENT",
                /^source\.architectures\[0\]: "arm64" is not offered by .*\/dists\/bookworm; it offers amd64$/,
            );
            assert.equal(err.argument, "source.architectures[0]");
            await expectFailure(
                syncMirror(spec({ source: source({ architectures: ["riscv64"] }) })),
                "ERR_INVALID_ARGUMENT",
                /^source\.architectures\[0\]: "riscv64" is not offered by .*; it offers amd64$/,
            );
        });

        it("a query that does not parse shows the position", async () => {
            await expectFailure(
                resolveLock({ source: source(), queries: ["app", "libfoo1 (>= 1.0"] }),
                "ERR_PARSE",
                /^query "libfoo1 \(>= 1\.0": .* at column \d+/,
            );
        });

        it("a query matching nothing names the query", async () => {
            await expectFailure(
                resolveLock({ source: source(), queries: ["app", "no-such-package"] }),
                "ERR_NOT_FOUND",
                /^packages\[1\] "no-such-package" matches nothing in http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm main \(architectures amd64 and all\)$/,
            );
        });

        it("a lock naming a version upstream does not have", async () => {
            await expectFailure(
                syncMirror(spec({ packages: { ...nextLock, "app/amd64": "9.9-1" } })),
                "ERR_NOT_FOUND",
                /^packages: .*\/dists\/bookworm no longer has app\/amd64 9\.9-1; run preview again/,
            );
        });
    });

    describe("the network (each retried, then a clear failure)", () => {
        let debPath: string;

        before(() => {
            const deb = upstream.debs("main").find((d) => d.name === "unrelated")!;
            debPath = `/${upstream.poolPath("main", deb)}`;
        });

        it("404 on a package file: not retried, names the URL", async () => {
            server.fault(debPath, { status: 404 });
            await expectFailure(
                syncMirror(spec()),
                "ERR_NOT_FOUND",
                new RegExp(`${debPath.slice(1)}: GET ${server.url}${debPath}: `),
            );
            assert.equal(server.requestsFor(debPath).length, 1);
        });

        it("404 on the InRelease and the Release: the distribution is not found", async () => {
            server.fault("/dists/bookworm/InRelease", { status: 404 });
            server.fault("/dists/bookworm/Release", { status: 404 });
            await expectFailure(syncMirror(spec()), "ERR_NOT_FOUND", /^distribution "bookworm" not found at /);
        });

        it("500 on every attempt: retried, then names the URL and the status", async () => {
            server.fault(debPath, { status: 500 });
            await expectFailure(
                syncMirror(spec()),
                "ERR_NETWORK",
                new RegExp(`${debPath.slice(1)}: GET ${server.url}${debPath}: failed after 4 attempts: HTTP 500`),
            );
            assert.ok(server.requestsFor(debPath).length > 1, "a 500 is retried");
        });

        it("500 on the InRelease on every attempt", async () => {
            server.fault("/dists/bookworm/InRelease", { status: 500 });
            await expectFailure(
                syncMirror(spec()),
                "ERR_NETWORK",
                new RegExp(`^GET ${server.url}/dists/bookworm/InRelease: failed after 4 attempts: HTTP 500`),
            );
            assert.ok(server.requestsFor("/dists/bookworm/InRelease").length > 1);
        });

        it("the connection reset in the middle of the body, on every attempt", async () => {
            server.fault(debPath, { reset: true });
            await expectFailure(
                syncMirror(spec()),
                "ERR_NETWORK",
                new RegExp(`${debPath.slice(1)}: GET ${server.url}${debPath}: failed after 4 attempts: `),
            );
            assert.ok(server.requestsFor(debPath).length > 1, "a reset is retried");
        });

        it("a body cut short, on every attempt", async () => {
            server.fault(debPath, { truncate: 1000 });
            await expectFailure(
                syncMirror(spec()),
                "ERR_NETWORK",
                new RegExp(`${debPath.slice(1)}: GET ${server.url}${debPath}: failed after 4 attempts: `),
            );
            assert.ok(server.requestsFor(debPath).length > 1, "a truncated body is retried");
        });

        it("an index cut short on every attempt", async () => {
            const cacheDir = await makeTempDir("faults-truncate-cache");
            server.fault(/\/dists\/bookworm\/main\/binary-amd64\/Packages/, { truncate: 20 });
            await expectFailure(
                syncMirror(spec(), { cacheDir }),
                "ERR_NETWORK",
                new RegExp(
                    `GET ${server.url}/dists/bookworm/main/binary-amd64/Packages\\S*: failed after 4 attempts: `,
                ),
            );
        });
    });

    describe("the signing key (operations.check and update)", () => {
        const state = (): AptMirrorState => generation1;

        it("a signing key that does not parse names signing.privateKey", async () => {
            const news = spec({ signing: { privateKey: "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot a key\n" } });
            const checked = await operations.check(state(), news);
            assert.deepEqual(
                checked.failures.map((f) => f.property),
                ["signing.privateKey"],
                JSON.stringify(checked.failures),
            );
            assert.match(checked.failures[0]!.reason, /not an armored OpenPGP private key/);
            const err = await expectFailure(
                operations.update(repoDir, state(), news),
                "ERR_INVALID_ARGUMENT",
                /^signing\.privateKey: is not an armored OpenPGP private key/,
            );
            assert.equal(err.argument, "signing.privateKey");
            await expectFailure(
                syncMirror(news),
                "ERR_INVALID_ARGUMENT",
                /^signing\.privateKey: is not an armored OpenPGP private key/,
            );
        });

        it("an encrypted key without a passphrase names signing.passphrase", async () => {
            const generated = await openpgp.generateKey({
                type: "ecc",
                curve: "ed25519Legacy",
                userIDs: [{ name: "Encrypted" }],
                passphrase: "secret",
                format: "armored",
            });
            const news = spec({ signing: { privateKey: generated.privateKey } });
            const checked = await operations.check(state(), news);
            assert.deepEqual(checked.failures, [
                { property: "signing.passphrase", reason: "the key is encrypted, give its passphrase" },
            ]);
            const err = await expectFailure(
                operations.update(repoDir, state(), news),
                "ERR_INVALID_ARGUMENT",
                /^signing\.passphrase: the key is encrypted, give its passphrase$/,
            );
            assert.equal(err.argument, "signing.passphrase");
            const wrong = spec({ signing: { privateKey: generated.privateKey, passphrase: "not it" } });
            assert.deepEqual(
                (await operations.check(state(), wrong)).failures.map((f) => f.property),
                ["signing.passphrase"],
            );
        });

        it("no signing and no allowUnsigned names signing", async () => {
            const news = spec({ signing: undefined });
            const checked = await operations.check(state(), news);
            assert.deepEqual(
                checked.failures.map((f) => f.property),
                ["signing"],
            );
            await expectFailure(operations.update(repoDir, state(), news), "ERR_INVALID_ARGUMENT", /^signing: /);
        });
    });

    // Last (mocha runs a suite's own tests before its child suites): it succeeds, so the
    // published repository changes.
    describe("a passing fault", () => {
        it("a 500 once on a package file is retried and the sync completes", async () => {
            const deb = upstream.debs("main").find((d) => d.name === "unrelated")!;
            const debPath = `/${upstream.poolPath("main", deb)}`;
            // An earlier test published nothing but may have verified this download already.
            await rm(
                join(
                    downloadDir(spec()),
                    downloadName({ filename: upstream.poolPath("main", deb), sha256: deb.sha256 }),
                ),
                { force: true },
            );
            server.fault(debPath, { status: 500, times: 1 });
            const state = await syncMirror(spec());
            assert.deepEqual(
                server.requestsFor(debPath).map((r) => r.status),
                [500, 200],
            );
            assert.equal(state.packageCount, 4);
            assert.deepEqual(state.packages, nextLock);
            const client = await makeAptClient({
                sources: [
                    {
                        uri: `${mirrorServer.url}/debian`,
                        suites: ["bookworm"],
                        components: ["main"],
                        signedBy: state.publicKey,
                    },
                ],
            });
            try {
                const update = await client.update();
                assert.ok(update.ok, describeAptResult("apt-get update", update));
                const install = await client.installDownloadOnly(["unrelated"]);
                assert.ok(install.ok, describeAptResult("apt-get install --download-only unrelated", install));
                assert.deepEqual(install.files, ["unrelated_3.0-1_amd64.deb"]);
            } finally {
                await client.close();
            }
        });
    });
});
