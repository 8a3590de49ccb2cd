import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
    type AptClient,
    aptCachePolicy,
    aptDownload,
    aptInstallDownloadOnly,
    aptUpdate,
    describeAptResult,
    makeAptClient,
} from "../../harness/fixtures/aptget";
import {
    type AptRepo,
    buildRepo,
    type DebSpec,
    type GpgKeyring,
    listFiles,
    makeDeb,
    makeGpgKeyring,
} from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { run } from "../../harness/servers/process";
import { cleanupAll } from "../../harness/tmp";

/** A small dependency graph: app → libfoo (>= 1.0) | libfoo-compat, config-tool; libfoo pre-depends on base. */
const MAIN: DebSpec[] = [
    { name: "app", version: "1.0-1", depends: "libfoo1 (>= 1.0), config-tool", recommends: "app-docs" },
    { name: "libfoo1", version: "1.2-1", source: "libfoo", preDepends: "base-files-test", multiArch: "same" },
    { name: "config-tool", version: "2:0.9-3", arch: "all", depends: "virtual-editor" },
    { name: "tiny-editor", version: "1.0", provides: "virtual-editor" },
    { name: "base-files-test", version: "12.4", size: 40_000 },
    { name: "app-docs", version: "1.0-1", arch: "all" },
    { name: "unrelated", version: "3.0" },
];
const CONTRIB: DebSpec[] = [{ name: "extra-thing", version: "0.1", depends: "app" }];

describe("harness: APT repositories built with Debian tools, read by apt-get", function () {
    this.timeout(300_000);

    describe("makeDeb", () => {
        it("builds a package dpkg-deb can read back, reproducibly", async () => {
            const spec: DebSpec = { name: "probe", version: "1:1.0-1", depends: "a, b (>= 2)", size: 5000 };
            const a = await makeDeb(spec);
            const b = await makeDeb(spec);
            assert.equal(a.fileName, "probe_1.0-1_amd64.deb");
            assert.equal(a.sha256, b.sha256);
            assert.ok(a.size > 5000, `size ${a.size} should reflect the incompressible payload`);
            const info = await run("dpkg-deb", ["--field", a.path, "Package", "Version", "Depends", "Architecture"]);
            assert.match(info.stdout, /^Package: probe$/m);
            assert.match(info.stdout, /^Version: 1:1\.0-1$/m);
            assert.match(info.stdout, /^Depends: a, b \(>= 2\)$/m);
            const other = await makeDeb({ ...spec, version: "1:1.0-2" });
            assert.notEqual(other.sha256, a.sha256);
        });
    });

    for (const signWith of ["rsa", "ed25519", "both"] as const) {
        describe(`repository signed with ${signWith}`, () => {
            let repo: AptRepo;
            let server: StaticServer;
            let apt: AptClient;

            before(async () => {
                repo = await buildRepo({
                    distribution: "stable",
                    codename: "harness",
                    components: { main: MAIN, contrib: CONTRIB },
                    architectures: ["amd64", "arm64"],
                    signWith,
                    origin: "Harness",
                    label: "Harness Label",
                });
                server = await startStaticServer(repo.dir);
                apt = await makeAptClient({
                    sources: [
                        {
                            uri: `${server.url}/`,
                            suites: ["stable"],
                            components: ["main", "contrib"],
                            signedBy: repo.publicKeyPath!,
                        },
                    ],
                });
            });
            after(async () => {
                await apt?.close();
                await server?.close();
                await repo?.close();
            });

            it("lays out pool/ and dists/ like an archive, signed by the expected keys", async () => {
                const files = await listFiles(repo.dir);
                for (const f of [
                    "dists/stable/InRelease",
                    "dists/stable/Release",
                    "dists/stable/Release.gpg",
                    "dists/stable/main/binary-amd64/Packages",
                    "dists/stable/main/binary-amd64/Packages.gz",
                    "dists/stable/main/binary-amd64/Packages.xz",
                    "dists/stable/contrib/binary-arm64/Packages.xz",
                    "pool/main/libf/libfoo/libfoo1_1.2-1_amd64.deb",
                    "pool/main/c/config-tool/config-tool_0.9-3_all.deb",
                ]) {
                    assert.ok(files.includes(f), `${f} is missing; have ${files.join(", ")}`);
                }
                const release = await readFile(repo.releasePath, "utf8");
                assert.match(release, /^Origin: Harness$/m);
                assert.match(release, /^Label: Harness Label$/m);
                assert.match(release, /^Suite: stable$/m);
                assert.match(release, /^Codename: harness$/m);
                assert.match(release, /^Architectures: amd64 arm64$/m);
                assert.match(release, /^Components: main contrib$/m);
                assert.match(release, /^SHA256:$/m);
                assert.match(release, / main\/binary-amd64\/Packages\.xz$/m);

                const expected = signWith === "both" ? ["rsa", "ed25519"] : [signWith];
                assert.deepEqual(
                    repo.keyring?.keys.map((k) => k.kind),
                    expected,
                );
                assert.equal(repo.fingerprints.length, expected.length);
                for (const k of repo.keyring!.keys) assert.match(k.privateKeyArmored, /BEGIN PGP PRIVATE KEY BLOCK/);
                // gpgv, as APT uses it, accepts both signatures with the exported public keys alone.
                const keyring = join(repo.keyring!.home, "verify.gpg");
                await run("gpg", ["--batch", "--yes", "--dearmor", "--output", keyring, repo.publicKeyPath!]);
                const verified = await run("gpgv", ["--status-fd", "1", "--keyring", keyring, repo.inReleasePath]);
                const good = verified.stdout.split("\n").filter((l) => l.startsWith("[GNUPG:] VALIDSIG "));
                assert.equal(good.length, expected.length);
                await run("gpgv", ["--keyring", keyring, repo.releaseGpgPath, repo.releasePath]);

                const packages = gunzipSync(
                    await readFile(join(repo.distDir, "main/binary-arm64/Packages.gz")),
                ).toString();
                assert.match(packages, /^Package: config-tool$/m, "arch all packages are in every architecture");
                assert.doesNotMatch(packages, /^Package: app$/m, "amd64 packages are not in binary-arm64");
            });

            it("apt-get update verifies it and install --download-only resolves and fetches dependencies", async () => {
                const update = await aptUpdate(apt);
                assert.ok(update.ok, describeAptResult("apt-get update", update));
                assert.doesNotMatch(update.stderr, /^W: /m, describeAptResult("apt-get update", update));

                const install = await aptInstallDownloadOnly(apt, ["extra-thing"]);
                assert.ok(install.ok, describeAptResult("apt-get install --download-only", install));
                assert.deepEqual(install.files, [
                    "app_1.0-1_amd64.deb",
                    "base-files-test_12.4_amd64.deb",
                    "config-tool_2%3a0.9-3_all.deb",
                    "extra-thing_0.1_amd64.deb",
                    "libfoo1_1.2-1_amd64.deb",
                    "tiny-editor_1.0_amd64.deb",
                ]);
                assert.equal(server.requestsFor("/pool/main/u/unrelated/unrelated_3.0_amd64.deb").length, 0);
                assert.equal(server.requestsFor("/pool/main/a/app-docs/app-docs_1.0-1_all.deb").length, 0);

                const policy = await aptCachePolicy(apt, "libfoo1");
                assert.ok(policy.ok, describeAptResult("apt-cache policy", policy));
                assert.match(policy.stdout, /Candidate: 1\.2-1/);
                const releases = await apt.run("apt-cache", ["policy"]);
                assert.match(releases.stdout, /o=Harness,a=stable,n=harness,l=Harness Label,c=main,b=amd64/);

                const download = await aptDownload(apt, ["unrelated"]);
                assert.ok(download.ok, describeAptResult("apt-get download", download));
                assert.deepEqual(download.files, ["unrelated_3.0_amd64.deb"]);
            });
        });
    }

    describe("negative cases and upstream changes", () => {
        let keyring: GpgKeyring;
        let wrongKeys: GpgKeyring;
        let repo: AptRepo;
        let server: StaticServer;
        const clients: AptClient[] = [];
        const client = async (signedBy: string, options: { config?: Record<string, string> } = {}) => {
            const c = await makeAptClient({
                sources: [{ uri: `${server.url}/`, suites: ["stable"], components: ["main"], signedBy }],
                ...options,
            });
            clients.push(c);
            return c;
        };

        before(async () => {
            [keyring, wrongKeys] = await Promise.all([makeGpgKeyring(["ed25519"]), makeGpgKeyring(["ed25519"])]);
            repo = await buildRepo({ distribution: "stable", components: { main: MAIN }, keyring, byHash: true });
            server = await startStaticServer(repo.dir);
        });
        after(async () => {
            for (const c of clients) await c.close();
            await server?.close();
            await repo?.close();
            await keyring?.close();
            await wrongKeys?.close();
            await cleanupAll();
        });

        it("apt-get update fails when Signed-By names a different key", async () => {
            const apt = await client(wrongKeys.publicKeysArmored);
            const update = await apt.update();
            assert.equal(update.ok, false, describeAptResult("apt-get update with the wrong key", update));
            assert.match(update.stderr + update.stdout, /NO_PUBKEY|not signed|signatures couldn't be verified/);
            const install = await apt.installDownloadOnly(["app"]);
            assert.equal(install.ok, false, "nothing may be installable from an unverified repository");
        });

        it("apt-get update fails when the signed Release does not match (tampered InRelease)", async () => {
            const apt = await client(keyring.publicKeyPath);
            const tampered = (await readFile(repo.inReleasePath, "utf8")).replace("Suite: stable", "Suite: stablx");
            server.fault("/dists/stable/InRelease", { replaceBody: Buffer.from(tampered) });
            server.fault("/dists/stable/Release.gpg", { status: 404 });
            try {
                const update = await apt.update();
                assert.equal(update.ok, false, describeAptResult("apt-get update of a tampered InRelease", update));
                assert.match(update.stderr + update.stdout, /BADSIG|signatures were invalid|not signed/);
            } finally {
                server.clearFaults();
            }
        });

        it("apt-get refuses an index whose hash does not match Release", async () => {
            const apt = await client(keyring.publicKeyPath, { config: { "Acquire::By-Hash": "no" } });
            server.fault(/\/Packages(\.xz|\.gz)?$/, { replaceBody: Buffer.from("Package: evil\nVersion: 9\n\n") });
            try {
                const update = await apt.update();
                assert.equal(update.ok, false, describeAptResult("apt-get update with a bad index", update));
                assert.match(update.stderr + update.stdout, /Hash Sum mismatch|File has unexpected size/);
            } finally {
                server.clearFaults();
            }
        });

        it("publishes indexes by hash when asked", async () => {
            const release = await readFile(repo.releasePath, "utf8");
            assert.match(release, /^Acquire-By-Hash: yes$/m);
            const m = / ([0-9a-f]{64}) +\d+ main\/binary-amd64\/Packages\.xz$/m.exec(release.split("SHA256:")[1]!);
            assert.ok(m, "Release lists Packages.xz under SHA256");
            assert.ok(existsSync(join(repo.distDir, "main/binary-amd64/by-hash/SHA256", m[1]!)));
            const apt = await client(keyring.publicKeyPath);
            server.clearLog();
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update (by-hash)", update));
            // APT picks the strongest hash it knows (SHA512).
            assert.ok(
                server.requests.some((r) => /\/by-hash\/SHA(256|512)\//.test(r.path) && r.status === 200),
                JSON.stringify(server.requests),
            );
        });

        it("sees a new upstream version after addDebs re-indexes and re-signs", async () => {
            const apt = await client(keyring.publicKeyPath);
            assert.ok((await apt.update()).ok);
            assert.match((await apt.cachePolicy("app")).stdout, /Candidate: 1\.0-1/);

            const [added] = await repo.addDebs("main", [
                { name: "app", version: "1.1-1", depends: "libfoo1 (>= 1.2), config-tool" },
            ]);
            assert.equal(added?.path, join(repo.dir, "pool/main/a/app/app_1.1-1_amd64.deb"));
            assert.deepEqual(
                repo
                    .debs("main")
                    .filter((d) => d.name === "app")
                    .map((d) => d.version),
                ["1.0-1", "1.1-1"],
            );
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update after addDebs", update));
            const policy = await apt.cachePolicy("app");
            assert.match(policy.stdout, /Candidate: 1\.1-1/);
            assert.match(policy.stdout, /1\.0-1 500/);
            const install = await apt.installDownloadOnly(["app"]);
            assert.ok(install.ok, describeAptResult("apt-get install --download-only", install));
            assert.ok(install.files.includes("app_1.1-1_amd64.deb"));

            await repo.removeDebs("main", "app", "1.1-1");
            assert.ok((await apt.update()).ok);
            assert.match((await apt.cachePolicy("app")).stdout, /Candidate: 1\.0-1/);
        });

        it("an unsigned repository is refused by apt-get", async () => {
            const unsigned = await buildRepo({
                distribution: "stable",
                components: { main: MAIN.slice(0, 1) },
                signWith: "none",
            });
            const other = await startStaticServer(unsigned.dir);
            try {
                assert.equal(existsSync(unsigned.inReleasePath), false);
                const apt = await makeAptClient({
                    sources: [
                        {
                            uri: `${other.url}/`,
                            suites: ["stable"],
                            components: ["main"],
                            signedBy: keyring.publicKeyPath,
                        },
                    ],
                });
                clients.push(apt);
                const update = await apt.update();
                assert.equal(update.ok, false, describeAptResult("apt-get update of an unsigned repository", update));
                assert.match(update.stderr, /is not signed/);
            } finally {
                await other.close();
                await unsigned.close();
            }
        });
    });
});
