import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, lstat, mkdir, readdir, readFile, readlink, realpath, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import * as openpgp from "openpgp";
import { parseStanzas, toPackageRecord } from "../../../provider/apt/control";
import {
    type IndexCompressor,
    type PublishOptions,
    type PublishPackage,
    publishRepo,
    unpublish,
} from "../../../provider/apt/publish";
import { readPublished } from "../../../provider/apt/publish_read";
import { extractClearsigned, parseRelease } from "../../../provider/apt/release";
import { hasCode } from "../../../provider/errors";
import { type AptClient, describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import {
    type BuiltDeb,
    buildRepo,
    type DebSpec,
    type GpgKeyring,
    listFiles,
    makeDeb,
    makeGpgKeyring,
} from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { run } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * The publisher checked by its real consumer: repositories published from packages built with
 * dpkg-deb and indexed upstream by apt-ftparchive are served over HTTP and read by apt-get with
 * signature checking on.
 */

const MAIN: DebSpec[] = [
    { name: "app", version: "1.0-1", arch: "amd64", depends: "libfoo1 (>= 1.0), config-tool" },
    { name: "app", version: "1.0-1", arch: "arm64", depends: "libfoo1 (>= 1.0), config-tool" },
    { name: "libfoo1", version: "1.2-1", arch: "amd64", source: "libfoo", multiArch: "same" },
    { name: "libfoo1", version: "1.2-1", arch: "arm64", source: "libfoo", multiArch: "same" },
    { name: "config-tool", version: "2:0.9-3", arch: "all" },
    { name: "unrelated", version: "3.0", arch: "amd64", size: 20_000 },
];
const CONTRIB: DebSpec[] = [{ name: "extra-thing", version: "0.1", arch: "amd64", depends: "app" }];

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/**
 * Upstream's view of some packages: built with makeDeb, indexed with apt-ftparchive (the records
 * a sync would hand over), each with the local file holding it.
 */
async function upstream(component: string, specs: readonly DebSpec[]): Promise<PublishPackage[]> {
    const dir = await makeTempDir("upstream");
    const debs: BuiltDeb[] = [];
    for (const spec of specs) debs.push(await makeDeb(spec));
    await mkdir(join(dir, "debs"));
    for (const deb of debs) await copyFile(deb.path, join(dir, "debs", deb.fileName));
    const index = await run("apt-ftparchive", ["packages", "debs"], { cwd: dir, env: { ...process.env, LC_ALL: "C" } });
    return parseStanzas(index.stdout).map((stanza) => {
        const record = toPackageRecord(stanza, component);
        return { record, file: join(dir, record.filename) };
    });
}

/** The files below `dir` as a client reaches them (following the dists/<dist> symlink), sorted. */
async function reachableFiles(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
        for (const name of await readdir(join(dir, rel))) {
            const child = rel === "" ? name : `${rel}/${name}`;
            if ((await stat(join(dir, child))).isDirectory()) await walk(child);
            else out.push(child);
        }
    };
    await walk("");
    return out.sort();
}

/** Every file reachable under `dir`, path → bytes. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const rel of await reachableFiles(dir)) out.set(rel, await readFile(join(dir, rel)));
    return out;
}

/** The published suite as a client sees it: InRelease, then every file it lists, each checked. */
async function clientView(url: string): Promise<{ release: string; checked: number }> {
    const inRelease = await (await fetch(`${url}/InRelease`)).text();
    const release = extractClearsigned(inRelease).payload;
    let checked = 0;
    for (const file of parseRelease(release).files) {
        const dir = file.path.slice(0, file.path.lastIndexOf("/"));
        const response = await fetch(`${url}/${dir}/by-hash/SHA256/${file.sha256}`);
        assert.equal(response.status, 200, `${file.path} by hash`);
        const bytes = Buffer.from(await response.arrayBuffer());
        assert.equal(sha256(bytes), file.sha256, `${file.path} matches the Release it was listed in`);
        checked++;
    }
    return { release, checked };
}

/** `xz` from xz-utils behind the compressor hook. */
const xzCommand: IndexCompressor = {
    extension: ".xz",
    compress(data) {
        const result = spawnSync("xz", ["-6", "-c", "-"], { input: data, maxBuffer: 1 << 30 });
        if (result.status !== 0) throw new Error(`xz failed: ${result.stderr}`);
        return result.stdout;
    },
};

describe("apt/publish: signed repositories that apt-get reads", function () {
    this.timeout(300_000);
    let keyring: GpgKeyring;
    let root: string;
    let server: StaticServer;
    let main: PublishPackage[];
    let contrib: PublishPackage[];
    const clients: AptClient[] = [];

    const client = async (prefix: string, architecture = "amd64", components = ["main", "contrib"]) => {
        const c = await makeAptClient({
            sources: [
                {
                    uri: `${server.url}/${prefix}/`,
                    suites: ["stable"],
                    components,
                    signedBy: keyring.keys[0]!.publicKeyArmored,
                },
            ],
            architectures: [architecture],
        });
        clients.push(c);
        return c;
    };
    const options = (
        prefix: string,
        packages: PublishPackage[],
        more: Partial<PublishOptions> = {},
    ): PublishOptions => ({
        root,
        prefix,
        distribution: "stable",
        codename: "airgap",
        origin: "Airgap",
        label: "Airgap Mirror",
        description: "published by the tests",
        components: ["main", "contrib"],
        architectures: ["amd64", "arm64"],
        packages,
        signing: { privateKey: keyring.keys[0]!.privateKeyArmored },
        ...more,
    });
    const byName = (packages: PublishPackage[], name: string) => packages.filter((p) => p.record.name === name);

    before(async () => {
        keyring = await makeGpgKeyring(["ed25519"]);
        root = await makeTempDir("publish");
        server = await startStaticServer(root);
        main = await upstream("main", MAIN);
        contrib = await upstream("contrib", CONTRIB);
    });
    after(async () => {
        for (const c of clients) await c.close();
        await server?.close();
        await keyring?.close();
        await cleanupAll();
    });

    describe("publish, republish, crash, drift", () => {
        let apt: AptClient;
        let generation1: string;

        it("publishes a suite apt-get verifies, resolves and downloads from, for each architecture", async () => {
            const result = await publishRepo(options("debian", [...main, ...contrib]));
            generation1 = result.generation;
            assert.equal(result.packages.length, 7);
            assert.equal(result.placed.length, 7);
            const files = await reachableFiles(join(root, "debian"));
            for (const f of [
                "dists/stable/InRelease",
                "dists/stable/Release",
                "dists/stable/Release.gpg",
                "dists/stable/main/binary-amd64/Packages",
                "dists/stable/main/binary-arm64/Packages.gz",
                "dists/stable/contrib/binary-amd64/Packages",
                "pool/main/a/app/app_1.0-1_amd64.deb",
                "pool/main/libf/libfoo/libfoo1_1.2-1_arm64.deb",
                "pool/main/c/config-tool/config-tool_0.9-3_all.deb",
                "pool/contrib/e/extra-thing/extra-thing_0.1_amd64.deb",
            ]) {
                assert.ok(files.includes(f), `${f} is missing; have ${files.join(", ")}`);
            }
            const link = join(root, "debian/dists/stable");
            assert.ok((await lstat(link)).isSymbolicLink());
            assert.equal(await readlink(link), `../.generations/stable/${generation1}`);

            const release = await readFile(join(link, "Release"), "utf8");
            for (const line of [
                "Origin: Airgap",
                "Label: Airgap Mirror",
                "Suite: stable",
                "Codename: airgap",
                "Acquire-By-Hash: yes",
                "Architectures: amd64 arm64",
                "Components: main contrib",
                "Description: published by the tests",
            ]) {
                assert.ok(release.split("\n").includes(line), `Release lacks ${JSON.stringify(line)}:\n${release}`);
            }
            assert.match(release, /^Date: .+ UTC$/m);
            const arm64 = await readFile(join(link, "main/binary-arm64/Packages"), "utf8");
            assert.match(arm64, /^Package: config-tool$/m, "arch all packages are in every binary-<arch>");
            assert.match(arm64, /^Filename: pool\/main\/a\/app\/app_1\.0-1_arm64\.deb$/m);
            assert.doesNotMatch(arm64, /_amd64\.deb$/m);
            assert.doesNotMatch(arm64, /^(MD5sum|SHA1):/m, "only the verified SHA256 is published");

            // gpgv, as apt calls it, accepts both signed forms with the public key alone.
            const keyFile = join(root, "..", `${root.split("/").pop()}-key.gpg`);
            await run("gpg", ["--batch", "--yes", "--dearmor", "--output", keyFile, keyring.publicKeyPath]);
            await run("gpgv", ["--keyring", keyFile, join(link, "InRelease")]);
            await run("gpgv", ["--keyring", keyFile, join(link, "Release.gpg"), join(link, "Release")]);
            await rm(keyFile, { force: true });

            apt = await client("debian");
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(update.stderr, /^W: /m, describeAptResult("apt-get update", update));
            const install = await apt.installDownloadOnly(["extra-thing"]);
            assert.ok(install.ok, describeAptResult("apt-get install --download-only", install));
            assert.deepEqual(install.files, [
                "app_1.0-1_amd64.deb",
                "config-tool_2%3a0.9-3_all.deb",
                "extra-thing_0.1_amd64.deb",
                "libfoo1_1.2-1_amd64.deb",
            ]);
            const policy = await apt.run("apt-cache", ["policy"]);
            assert.match(policy.stdout, /o=Airgap,a=stable,n=airgap,l=Airgap Mirror,c=main,b=amd64/);

            const arm = await client("debian", "arm64", ["main"]);
            assert.ok((await arm.update()).ok);
            const armInstall = await arm.installDownloadOnly(["app"]);
            assert.ok(armInstall.ok, describeAptResult("apt-get install (arm64)", armInstall));
            assert.deepEqual(armInstall.files, [
                "app_1.0-1_arm64.deb",
                "config-tool_2%3a0.9-3_all.deb",
                "libfoo1_1.2-1_arm64.deb",
            ]);

            const state = await readPublished(root, "debian", "stable", { publicKey: keyring.publicKeysArmored });
            assert.deepEqual(state.problems, []);
            assert.ok(state.ok);
            assert.equal(state.generation, generation1);
            assert.equal(state.packages.length, 7);
            assert.equal(state.signature?.inRelease, "valid");
            assert.equal(state.signature?.releaseGpg, "valid");
        });

        it("republishes with one package changed: apt-get sees the new version, the old pool file stays one publish longer", async () => {
            const before = await readFile(join(root, "debian/dists/stable/main/binary-amd64/Packages"));
            const app11 = await upstream("main", [
                { name: "app", version: "1.1-1", arch: "amd64", depends: "libfoo1 (>= 1.0), config-tool" },
                { name: "app", version: "1.1-1", arch: "arm64", depends: "libfoo1 (>= 1.0), config-tool" },
            ]);
            const packages = [...main.filter((p) => p.record.name !== "app"), ...app11, ...contrib];
            const result = await publishRepo(options("debian", packages));
            assert.notEqual(result.generation, generation1);
            assert.deepEqual(result.placed, [
                "pool/main/a/app/app_1.1-1_amd64.deb",
                "pool/main/a/app/app_1.1-1_arm64.deb",
            ]);
            assert.equal(result.kept.length, 5, "unchanged pool files are kept, not rewritten");
            // The previous generation and the files it names stay until the next publish: a client
            // that read the old indexes just before the switch still finds every file they name.
            assert.deepEqual(result.removed, []);
            assert.deepEqual(
                (await readdir(join(root, "debian/.generations/stable"))).sort(),
                [generation1, result.generation].sort(),
            );
            const oldFile = await fetch(`${server.url}/debian/pool/main/a/app/app_1.0-1_amd64.deb`);
            assert.equal(oldFile.status, 200);
            await oldFile.arrayBuffer();

            // A client holding the previous InRelease still finds its indexes by hash.
            const old = await fetch(
                `${server.url}/debian/dists/stable/main/binary-amd64/by-hash/SHA256/${sha256(before)}`,
            );
            assert.equal(old.status, 200);
            assert.deepEqual(Buffer.from(await old.arrayBuffer()), before);

            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            const policy = await apt.cachePolicy("app");
            assert.match(policy.stdout, /Candidate: 1\.1-1/);
            const install = await apt.installDownloadOnly(["app"]);
            assert.ok(install.ok, describeAptResult("apt-get install --download-only", install));
            assert.ok(install.files.includes("app_1.1-1_amd64.deb"), install.files.join(", "));
            main = [...main.filter((p) => p.record.name !== "app"), ...app11];
        });

        it("leaves the published suite byte for byte as it was when the publish dies before the switch", async () => {
            const repo = join(root, "debian");
            const published = await snapshot(join(repo, "dists"));
            const pool = await listFiles(join(repo, "pool"));
            const suiteUrl = `${server.url}/debian/dists/stable`;
            const app12 = await upstream("main", [
                { name: "app", version: "1.2-1", arch: "amd64", depends: "libfoo1 (>= 1.0), config-tool" },
            ]);
            const packages = [...main.filter((p) => p.record.name !== "app"), ...app12, ...contrib];
            let steps = 0;
            await assert.rejects(
                publishRepo(
                    options("debian", packages, {
                        hooks: {
                            async afterPool() {
                                assert.deepEqual(await snapshot(join(repo, "dists")), published);
                                assert.ok((await clientView(suiteUrl)).checked > 0);
                                steps++;
                            },
                            async beforeSwitch({ dir }) {
                                assert.ok((await stat(join(dir, "InRelease"))).isFile(), "the new suite is complete");
                                assert.deepEqual(await snapshot(join(repo, "dists")), published);
                                await clientView(suiteUrl);
                                steps++;
                                throw new Error("simulated crash before the switch");
                            },
                        },
                    }),
                ),
                /simulated crash before the switch/,
            );
            assert.equal(steps, 2);
            assert.deepEqual(await snapshot(join(repo, "dists")), published, "dists/ is exactly generation 2");
            for (const f of pool) assert.ok(await stat(join(repo, "pool", f)), `${f} is still in the pool`);
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update after the crash", update));
            assert.doesNotMatch(`${update.stdout}${update.stderr}`, /Hash Sum mismatch|mismatch/i);
            assert.match((await apt.cachePolicy("app")).stdout, /Candidate: 1\.1-1/);

            // The next run completes, reusing the pool file the crashed run placed, and collects its left-overs.
            const servedBefore = basename(await realpath(join(repo, "dists/stable")));
            let seenByOldClient: Awaited<ReturnType<typeof clientView>> | undefined;
            let oldInRelease = "";
            const result = await publishRepo(
                options("debian", packages, {
                    hooks: {
                        async beforeSwitch() {
                            oldInRelease = await (await fetch(`${suiteUrl}/InRelease`)).text();
                        },
                        async afterSwitch() {
                            // A client that read InRelease just before the switch fetches its indexes after it.
                            const release = parseRelease(extractClearsigned(oldInRelease).payload);
                            for (const file of release.files) {
                                const dir = file.path.slice(0, file.path.lastIndexOf("/"));
                                const r = await fetch(`${suiteUrl}/${dir}/by-hash/SHA256/${file.sha256}`);
                                assert.equal(r.status, 200, file.path);
                                assert.equal(sha256(Buffer.from(await r.arrayBuffer())), file.sha256);
                            }
                            seenByOldClient = await clientView(suiteUrl);
                        },
                    },
                }),
            );
            assert.ok(seenByOldClient !== undefined && seenByOldClient.checked > 0);
            assert.ok(result.kept.includes("pool/main/a/app/app_1.2-1_amd64.deb"), "placed by the crashed run, kept");
            // Kept: the new generation and the one served before it; gone: the first (two
            // publishes old, with the files only it named) and the crashed run's.
            assert.deepEqual(
                (await readdir(join(repo, ".generations/stable"))).sort(),
                [servedBefore, result.generation].sort(),
            );
            assert.deepEqual(result.removed, [
                "pool/main/a/app/app_1.0-1_amd64.deb",
                "pool/main/a/app/app_1.0-1_arm64.deb",
            ]);
            assert.equal(await stat(join(repo, ".staging")).catch(() => undefined), undefined);
            assert.deepEqual(
                (await listFiles(join(repo, "pool"))).filter((f) => f.includes(".tmp-")),
                [],
            );
            const update2 = await apt.update();
            assert.ok(update2.ok, describeAptResult("apt-get update", update2));
            assert.match((await apt.cachePolicy("app")).stdout, /Candidate: 1\.2-1/);
            main = [...main.filter((p) => p.record.name !== "app"), ...app12];
        });

        it("reports drift by path: missing and altered pool files, altered indexes, wrong signing key", async () => {
            const repo = join(root, "debian");
            const gone = "pool/main/u/unrelated/unrelated_3.0_amd64.deb";
            const altered = "pool/main/c/config-tool/config-tool_0.9-3_all.deb";
            await rm(join(repo, gone));
            const original = await readFile(join(repo, altered));
            const changed = Buffer.from(original);
            changed[changed.length - 1] ^= 0xff;
            // A new file, not a write through the hard link into upstream's copy.
            await rm(join(repo, altered));
            await writeFile(join(repo, altered), changed);

            const state = await readPublished(root, "debian", "stable", { publicKey: keyring.publicKeysArmored });
            assert.equal(state.ok, false);
            assert.deepEqual(
                state.problems.map((p) => [p.kind, p.path]),
                [
                    ["altered-pool-file", altered],
                    ["missing-pool-file", gone],
                ],
            );
            const other = await openpgp.generateKey({
                type: "ecc",
                curve: "ed25519Legacy",
                userIDs: [{ name: "Other" }],
                format: "armored",
            });
            const wrongKey = await readPublished(root, "debian", "stable", { publicKey: other.publicKey });
            assert.deepEqual(
                wrongKey.problems.filter((p) => p.kind === "signature").map((p) => p.path),
                ["dists/stable/InRelease", "dists/stable/Release.gpg"],
            );

            // Republishing the same content repairs the pool.
            await publishRepo(options("debian", [...main, ...contrib]));
            assert.deepEqual(
                (await readPublished(root, "debian", "stable", { publicKey: keyring.publicKeysArmored })).problems,
                [],
            );

            // An index changed behind the Release's back.
            const index = join(repo, "dists/stable/contrib/binary-amd64/Packages");
            const text = await readFile(index, "utf8");
            await rm(index);
            await writeFile(index, text.replace("Package: extra-thing", "Package: extra-thinG"));
            const indexDrift = await readPublished(root, "debian", "stable");
            assert.deepEqual(
                indexDrift.problems.map((p) => [p.kind, p.path]),
                [["altered-index", "dists/stable/contrib/binary-amd64/Packages"]],
            );
            await publishRepo(options("debian", [...main, ...contrib]));
            assert.ok((await readPublished(root, "debian", "stable")).ok);
        });

        it("refuses a second content for a published name, version and architecture, and changes nothing", async () => {
            const repo = join(root, "debian");
            const published = await snapshot(repo);
            const rebuilt = await upstream("main", [{ name: "unrelated", version: "3.0", arch: "amd64", size: 100 }]);
            const packages = [...main.filter((p) => p.record.name !== "unrelated"), ...rebuilt, ...contrib];
            await assert.rejects(
                publishRepo(options("debian", packages)),
                (err: Error) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") && /already published with SHA256/.test(err.message),
            );
            assert.deepEqual(await snapshot(repo), published);
        });

        it("refuses a package file that does not match its record, before the switch", async () => {
            const repo = join(root, "debian");
            const published = await snapshot(join(repo, "dists"));
            const newer = await upstream("main", [{ name: "unrelated", version: "3.1", arch: "amd64" }]);
            await writeFile(newer[0]!.file, "not the package");
            const packages = [...main.filter((p) => p.record.name !== "unrelated"), ...newer, ...contrib];
            await assert.rejects(publishRepo(options("debian", packages)), (err: Error) =>
                hasCode(err, "ERR_VERIFICATION"),
            );
            assert.deepEqual(await snapshot(join(repo, "dists")), published);
        });
    });

    describe("refusals before anything is written", () => {
        it("an encrypted key without its passphrase", async () => {
            const generated = await openpgp.generateKey({
                type: "ecc",
                curve: "ed25519Legacy",
                userIDs: [{ name: "Encrypted" }],
                passphrase: "secret",
                format: "armored",
            });
            await assert.rejects(
                publishRepo(options("encrypted", main, { signing: { privateKey: generated.privateKey } })),
                (err: Error & { argument?: string }) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") &&
                    err.argument === "signing.passphrase" &&
                    err.message === "signing.passphrase: the key is encrypted, give its passphrase",
            );
            assert.equal(await stat(join(root, "encrypted")).catch(() => undefined), undefined);
            const ok = await publishRepo(
                options("encrypted", main, { signing: { privateKey: generated.privateKey, passphrase: "secret" } }),
            );
            const state = await readPublished(root, "encrypted", "stable", { publicKey: generated.publicKey });
            assert.ok(state.ok, JSON.stringify(state.problems));
            assert.equal(ok.generation, state.generation);
            await unpublish(root, "encrypted");
        });

        it("an unsigned publish unless allowed", async () => {
            await assert.rejects(
                publishRepo(options("unsigned", main, { signing: undefined })),
                (err: Error & { argument?: string }) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") && err.argument === "signing",
            );
            assert.equal(await stat(join(root, "unsigned")).catch(() => undefined), undefined);
            await publishRepo(options("unsigned", main, { signing: undefined, allowUnsigned: true }));
            const files = await reachableFiles(join(root, "unsigned/dists/stable"));
            assert.ok(files.includes("Release"));
            assert.ok(!files.includes("InRelease") && !files.includes("Release.gpg"));
            await unpublish(root, "unsigned");
        });

        it("packages outside the components or architectures, and bad names", async () => {
            const cases: [Partial<PublishOptions>, string][] = [
                [{ components: ["contrib"] }, "packages[0].record.component"],
                [
                    { architectures: ["amd64"] },
                    `packages[${main.findIndex((p) => p.record.architecture === "arm64")}].record.architecture`,
                ],
                [{ architectures: ["amd64", "all"] }, "architectures[1]"],
                [{ distribution: "../etc" }, "distribution"],
                [{ prefix: "../outside" }, "prefix"],
                [{ prefix: "x/pool" }, "prefix"],
                [{ origin: "two\nlines" }, "origin"],
            ];
            for (const [more, argument] of cases) {
                await assert.rejects(
                    publishRepo(options("refused", main, more)),
                    (err: Error & { argument?: string }) =>
                        hasCode(err, "ERR_INVALID_ARGUMENT") && err.argument === argument,
                    argument,
                );
            }
            assert.equal(await stat(join(root, "refused")).catch(() => undefined), undefined);
        });
    });

    describe("compressors, suites sharing a pool, unpublish", () => {
        it("publishes Packages.xz through the compressor hook, which apt-get prefers", async () => {
            await publishRepo(options("xz", [...main, ...contrib], { compressors: [xzCommand] }));
            const release = await readFile(join(root, "xz/dists/stable/Release"), "utf8");
            assert.match(release, / main\/binary-amd64\/Packages\.xz$/m);
            const apt = await client("xz");
            server.clearLog();
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            const xzIndex = parseRelease(release).files.find((f) => f.path === "main/binary-amd64/Packages.xz")!;
            assert.ok(
                server.requests.some(
                    (r) => r.path === `/xz/dists/stable/main/binary-amd64/by-hash/SHA256/${xzIndex.sha256}`,
                ),
                `apt fetched Packages.xz by hash:\n${server.requests.map((r) => r.path).join("\n")}`,
            );
            assert.ok((await apt.installDownloadOnly(["app"])).ok);
            await unpublish(root, "xz");
        });

        it("takes over a suite another tool published as a plain directory", async () => {
            const legacy = await buildRepo({
                dir: join(root, "legacy"),
                distribution: "stable",
                components: { main: MAIN.filter((spec) => spec.name !== "unrelated") },
                architectures: ["amd64", "arm64"],
                keyring,
            });
            assert.ok((await lstat(join(root, "legacy/dists/stable"))).isDirectory());
            const result = await publishRepo(options("legacy", byName(main, "config-tool"), { components: ["main"] }));
            assert.deepEqual(result.kept, ["pool/main/c/config-tool/config-tool_0.9-3_all.deb"]);
            assert.ok(result.removed.includes("pool/main/a/app/app_1.0-1_amd64.deb"), result.removed.join(", "));
            assert.ok((await lstat(join(root, "legacy/dists/stable"))).isSymbolicLink());
            assert.deepEqual(await readdir(join(root, "legacy/.generations/stable")), [result.generation]);
            const apt = await client("legacy", "amd64", ["main"]);
            const update = await apt.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.ok((await apt.installDownloadOnly(["config-tool"])).ok);
            await legacy.close();
            await unpublish(root, "legacy");
        });

        it("unpublishes one suite of a shared pool, then the whole prefix, leaving other prefixes alone", async () => {
            const stable = [...main];
            const testing = [...byName(main, "config-tool"), ...contrib];
            await publishRepo(options("shared", stable));
            await publishRepo(options("shared", testing, { distribution: "testing" }));
            await publishRepo(options("shared/nested", byName(main, "unrelated")));
            const extraThing = "pool/contrib/e/extra-thing/extra-thing_0.1_amd64.deb";
            const configTool = "pool/main/c/config-tool/config-tool_0.9-3_all.deb";
            assert.ok(await stat(join(root, "shared", extraThing)));

            assert.equal(await unpublish(root, "shared", { distribution: "testing" }), true);
            assert.equal(await stat(join(root, "shared", extraThing)).catch(() => undefined), undefined);
            assert.ok(await stat(join(root, "shared", configTool)), "still named by stable");
            assert.ok((await readPublished(root, "shared", "stable")).ok);
            assert.equal((await readPublished(root, "shared", "testing")).exists, false);

            assert.equal(await unpublish(root, "shared"), true);
            assert.deepEqual(await readdir(join(root, "shared")), ["nested"]);
            assert.ok((await readPublished(root, "shared/nested", "stable")).ok);
            assert.equal(await unpublish(root, "shared/nested"), true);
            assert.equal(await stat(join(root, "shared")).catch(() => undefined), undefined);
            assert.equal(await unpublish(root, "shared"), false);
            assert.ok((await readPublished(root, "debian", "stable")).ok, "other prefixes are untouched");
        });
    });
});
