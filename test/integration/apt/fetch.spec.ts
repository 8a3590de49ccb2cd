import assert from "node:assert/strict";
import { cpSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { checkRequest, type FetchedRelease, fetchPackageIndexes, fetchRelease } from "../../../provider/apt/fetch";
import { hasCode } from "../../../provider/errors";
import { canDecompress } from "../../../provider/http/decompress";
import { loadPublicKeys, type VerificationKeys } from "../../../provider/pgp/verify";
import { type AptRepo, buildRepo, type DebSpec } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { expectCode } from "../../harness/expect";

const MAIN: DebSpec[] = [
    { name: "app", version: "1.0-1", depends: "libfoo1" },
    { name: "libfoo1", version: "1.2-1", source: "libfoo" },
    { name: "app-data", version: "1.0-1", arch: "all" },
    { name: "tool", version: "2:0.9-3", arch: "arm64" },
];
const CONTRIB: DebSpec[] = [{ name: "extra-thing", version: "0.1", depends: "app" }];

const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

function indexRequests(server: StaticServer): string[] {
    return server.requests.filter((r) => /\/binary-[^/]+\/(Packages|by-hash)/.test(r.path)).map((r) => r.path);
}

describe("apt fetch: Release, request check and Packages indexes from a real upstream", function () {
    this.timeout(300_000);

    let rsa: AptRepo;
    let ed: AptRepo;
    let unsigned: AptRepo;
    let rsaServer: StaticServer;
    let edServer: StaticServer;
    let unsignedServer: StaticServer;
    let rsaKeys: VerificationKeys;
    let edKeys: VerificationKeys;

    before(async () => {
        rsa = await buildRepo({
            distribution: "stable",
            components: { main: MAIN, contrib: CONTRIB },
            architectures: ["amd64", "arm64", "all"],
            signWith: "rsa",
        });
        ed = await buildRepo({ distribution: "stable", components: { main: MAIN }, signWith: "ed25519", byHash: true });
        unsigned = await buildRepo({ distribution: "stable", components: { main: MAIN }, signWith: "none" });
        rsaServer = await startStaticServer(rsa.dir);
        edServer = await startStaticServer(ed.dir);
        unsignedServer = await startStaticServer(unsigned.dir);
        rsaKeys = await loadPublicKeys(rsa.publicKeyArmored);
        edKeys = await loadPublicKeys({ file: ed.publicKeyPath! });
    });

    after(async () => {
        await Promise.all([rsaServer, edServer, unsignedServer].map((s) => s?.close()));
        await Promise.all([rsa, ed, unsigned].map((r) => r?.close()));
        await cleanupAll();
    });

    afterEach(() => {
        for (const server of [rsaServer, edServer, unsignedServer]) {
            server.clearFaults();
            server.clearLog();
        }
    });

    describe("fetchRelease", () => {
        it("verifies an RSA-signed InRelease", async () => {
            const fetched = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            assert.equal(fetched.from, "InRelease");
            assert.equal(fetched.signedBy?.fingerprint, rsa.fingerprints[0]);
            assert.deepEqual(fetched.release.components, ["main", "contrib"]);
            assert.deepEqual(fetched.release.architectures, ["amd64", "arm64", "all"]);
            assert.equal(fetched.suiteUrl, `${rsaServer.url}/dists/stable`);
            assert.deepEqual(
                rsaServer.requests.map((r) => r.path),
                ["/dists/stable/InRelease"],
            );
        });

        it("verifies an Ed25519-signed InRelease", async () => {
            const fetched = await fetchRelease({ url: `${edServer.url}/`, distribution: "stable", keys: edKeys });
            assert.equal(fetched.signedBy?.fingerprint, ed.fingerprints[0]);
            assert.equal(fetched.release.acquireByHash, true);
        });

        it("falls back to Release + Release.gpg when there is no InRelease", async () => {
            for (const [server, keys, repo] of [
                [rsaServer, rsaKeys, rsa],
                [edServer, edKeys, ed],
            ] as const) {
                server.fault("/dists/stable/InRelease", { status: 404 });
                const fetched = await fetchRelease({ url: server.url, distribution: "stable", keys });
                assert.equal(fetched.from, "Release");
                assert.equal(fetched.signedBy?.fingerprint, repo.fingerprints[0]);
                assert.deepEqual(
                    server.requests.map((r) => r.path),
                    ["/dists/stable/InRelease", "/dists/stable/Release", "/dists/stable/Release.gpg"],
                );
            }
        });

        it("rejects the wrong key, naming the signer and the given key", async () => {
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: edKeys }),
                "ERR_VERIFICATION",
                new RegExp(
                    `^InRelease from ${rsaServer.url}/dists/stable/InRelease: no valid signature by a given key: .*given keys ${ed.fingerprints[0]}`,
                ),
            );
            rsaServer.fault("/dists/stable/InRelease", { status: 404 });
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: edKeys }),
                "ERR_VERIFICATION",
                /Release\.gpg: no valid signature by a given key/,
            );
        });

        it("refuses a correctly signed Release of another suite served under the one asked for", async () => {
            // A replaying mirror: "stable"'s signed files served as "oldstable".
            const replay = await makeTempDir("replayed-suite");
            cpSync(join(ed.dir, "dists", "stable"), join(replay, "dists", "oldstable"), { recursive: true });
            const server = await startStaticServer(replay);
            try {
                await expectCode(
                    fetchRelease({ url: server.url, distribution: "oldstable", keys: edKeys }),
                    "ERR_VERIFICATION",
                    new RegExp(
                        `^InRelease from ${server.url}/dists/oldstable is the Release of "stable" / "[^"]+", not of "oldstable": the server answers for another suite`,
                    ),
                );
            } finally {
                await server.close();
            }
        });

        it("verifiedMemo: the same bytes and keys within a day are not checked again; anything else is", async () => {
            const memoDir = await makeTempDir("verified-memo");
            let loads = 0;
            const keys = async () => {
                loads++;
                return rsaKeys;
            };
            const memo = { dir: memoDir, keysId: "rsa-key-material" };
            const now = new Date();
            const first = await fetchRelease({
                url: rsaServer.url,
                distribution: "stable",
                keys,
                verifiedMemo: memo,
                now,
            });
            assert.equal(loads, 1, "the first fetch did not load the keys to verify");
            const second = await fetchRelease({
                url: rsaServer.url,
                distribution: "stable",
                keys,
                verifiedMemo: memo,
                now,
            });
            assert.equal(loads, 1, "the same InRelease with the same keys was verified again");
            assert.equal(second.text, first.text);
            assert.deepEqual(second.signedBy, first.signedBy);

            const later = new Date(now.getTime() + 25 * 3600 * 1000);
            await fetchRelease({ url: rsaServer.url, distribution: "stable", keys, verifiedMemo: memo, now: later });
            assert.equal(loads, 2, "a verification older than a day was trusted");
            await fetchRelease({
                url: rsaServer.url,
                distribution: "stable",
                keys,
                verifiedMemo: { ...memo, keysId: "other-key-material" },
                now,
            });
            assert.equal(loads, 3, "a verification with other keys was trusted");

            // Other bytes (altered in transit) miss the memo and fail verification.
            const { readFile } = await import("node:fs/promises");
            const inRelease = await readFile(rsa.inReleasePath, "utf8");
            rsaServer.fault("/dists/stable/InRelease", {
                replaceBody: Buffer.from(inRelease.replace("Suite: stable", "Suite: stab1e")),
            });
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys, verifiedMemo: memo, now }),
                "ERR_VERIFICATION",
                /does not verify/,
            );
            // A failed verification is not remembered: the same altered bytes fail again.
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys, verifiedMemo: memo, now }),
                "ERR_VERIFICATION",
                /does not verify/,
            );
        });

        it("rejects an InRelease or Release altered in transit", async () => {
            const { readFile } = await import("node:fs/promises");
            const inRelease = await readFile(rsa.inReleasePath, "utf8");
            rsaServer.fault("/dists/stable/InRelease", {
                replaceBody: Buffer.from(inRelease.replace("Suite: stable", "Suite: stab1e")),
            });
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys }),
                "ERR_VERIFICATION",
                /does not verify/,
            );
            rsaServer.clearFaults();
            const release = await readFile(rsa.releasePath, "utf8");
            rsaServer.fault("/dists/stable/InRelease", { status: 404 });
            rsaServer.fault("/dists/stable/Release", { replaceBody: Buffer.from(release.replace("stable", "stab1e")) });
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys }),
                "ERR_VERIFICATION",
                /does not verify/,
            );
        });

        it("refuses an unsigned repository unless allowUnsigned", async () => {
            await expectCode(
                fetchRelease({ url: unsignedServer.url, distribution: "stable", keys: rsaKeys }),
                "ERR_VERIFICATION",
                /Release is not signed \(no InRelease, no Release\.gpg\): set allowUnsigned/,
            );
            await expectCode(
                fetchRelease({ url: unsignedServer.url, distribution: "stable" }),
                "ERR_INVALID_ARGUMENT",
                /^keys: no key to verify/,
            );
            const fetched = await fetchRelease({
                url: unsignedServer.url,
                distribution: "stable",
                allowUnsigned: true,
            });
            assert.equal(fetched.from, "Release");
            assert.equal(fetched.signedBy, undefined);
            assert.deepEqual(fetched.release.components, ["main"]);
        });

        it("still checks a signature with allowUnsigned when keys are given", async () => {
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: edKeys, allowUnsigned: true }),
                "ERR_VERIFICATION",
                /no valid signature/,
            );
            const unchecked = await fetchRelease({ url: rsaServer.url, distribution: "stable", allowUnsigned: true });
            assert.equal(unchecked.signedBy, undefined);
            assert.deepEqual(unchecked.release.components, ["main", "contrib"]);
        });

        it("names URL and distribution when the distribution does not exist", async () => {
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "oldstable", keys: rsaKeys }),
                "ERR_NOT_FOUND",
                new RegExp(
                    `^distribution "oldstable" not found at ${rsaServer.url}: neither .*/dists/oldstable/InRelease nor .*/dists/oldstable/Release exists`,
                ),
            );
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "../etc", keys: rsaKeys }),
                "ERR_INVALID_ARGUMENT",
                /^distribution: /,
            );
            await expectCode(
                fetchRelease({ url: "ftp://example.invalid/debian", distribution: "stable", keys: rsaKeys }),
                "ERR_INVALID_ARGUMENT",
                /^url: /,
            );
        });

        it("retries 5xx answers and connection resets on the Release", async () => {
            rsaServer.fault("/dists/stable/InRelease", { status: 500, times: 2 });
            const fetched = await fetchRelease({
                url: rsaServer.url,
                distribution: "stable",
                keys: rsaKeys,
                retry: FAST_RETRY,
            });
            assert.equal(fetched.signedBy?.fingerprint, rsa.fingerprints[0]);
            assert.equal(rsaServer.requestsFor("/dists/stable/InRelease").length, 3);
            rsaServer.clearLog();
            rsaServer.fault("/dists/stable/InRelease", { reset: true, times: 1 });
            await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys, retry: FAST_RETRY });
            assert.equal(rsaServer.requestsFor("/dists/stable/InRelease").length, 2);
            rsaServer.fault("/dists/stable/InRelease", { status: 503 });
            await expectCode(
                fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys, retry: FAST_RETRY }),
                "ERR_NETWORK",
                /InRelease: failed after 3 attempts: HTTP 503/,
            );
        });

        it("loads keys from a URL, armored or binary", async () => {
            await writeFile(join(rsa.dir, "archive-key.asc"), rsa.publicKeyArmored);
            const binary = join(rsa.dir, "archive-key.gpg");
            await rsa.keyring!.gpg(["--yes", "--output", binary, "--export", ...rsa.fingerprints]);
            for (const name of ["archive-key.asc", "archive-key.gpg"]) {
                const keys = await loadPublicKeys(
                    { url: `${rsaServer.url}/${name}` },
                    { fingerprints: rsa.fingerprints },
                );
                const fetched = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys });
                assert.equal(fetched.signedBy?.fingerprint, rsa.fingerprints[0]);
            }
            await expectCode(
                loadPublicKeys({ url: `${rsaServer.url}/missing.asc` }),
                "ERR_NOT_FOUND",
                /missing\.asc: HTTP 404/,
            );
        });
    });

    describe("checkRequest", () => {
        let fetched: FetchedRelease;
        before(async () => {
            fetched = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
        });

        it("defaults to every component and every architecture but all", () => {
            assert.deepEqual(checkRequest(fetched), {
                components: ["main", "contrib"],
                architectures: ["amd64", "arm64"],
            });
            assert.deepEqual(checkRequest(fetched.release, ["contrib"], ["arm64", "arm64"]), {
                components: ["contrib"],
                architectures: ["arm64"],
            });
        });

        it("names an unknown component or architecture and lists what the Release offers", () => {
            assert.throws(
                () => checkRequest(fetched, ["main", "non-free"], ["amd64"]),
                (err: Error & { argument?: string }) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") &&
                    err.argument === "components[1]" &&
                    err.message ===
                        `components[1]: "non-free" is not offered by ${rsaServer.url}/dists/stable; it offers main, contrib`,
            );
            assert.throws(
                () => checkRequest(fetched, undefined, ["riscv64"]),
                /^AirgapError: architectures\[0\]: "riscv64" is not offered by .*; it offers amd64, arm64, all$/,
            );
            assert.throws(() => checkRequest(fetched, [], undefined), /^AirgapError: components: must not be empty/);
        });
    });

    describe("fetchPackageIndexes", () => {
        it("reads every requested index plus binary-all, each record with its component", async () => {
            const release = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            const request = checkRequest(release, undefined, ["amd64"]);
            const result = await fetchPackageIndexes({ release, ...request });
            const names = result.packages.map((p) => `${p.component}/${p.name}/${p.architecture}`).sort();
            assert.deepEqual(names, [
                "contrib/extra-thing/amd64",
                "main/app-data/all",
                "main/app/amd64",
                "main/libfoo1/amd64",
            ]);
            assert.deepEqual(
                result.indexes.map((i) => `${i.component}/${i.architecture}:${i.source}`),
                ["main/amd64:download", "main/all:download", "contrib/amd64:download", "contrib/all:download"],
            );
            assert.ok(result.indexes.every((i) => i.path.endsWith("/Packages.gz")));
            if (canDecompress("xz")) {
                const xz = await fetchPackageIndexes({ release, ...request, compressions: ["xz"] });
                assert.ok(xz.indexes.every((i) => i.path.endsWith("/Packages.xz")));
                assert.deepEqual(
                    xz.packages.map((p) => p.stanza.raw),
                    result.packages.map((p) => p.stanza.raw),
                );
            }
            const libfoo = result.packages.find((p) => p.name === "libfoo1")!;
            const deb = rsa.debs("main").find((d) => d.name === "libfoo1")!;
            assert.equal(libfoo.filename, rsa.poolPath("main", deb));
            assert.equal(libfoo.sha256, deb.sha256);
            assert.equal(libfoo.size, deb.size);
            assert.equal(libfoo.source, "libfoo");
        });

        it("prefers by-hash locations when the Release offers them", async () => {
            const release = await fetchRelease({ url: edServer.url, distribution: "stable", keys: edKeys });
            const result = await fetchPackageIndexes({ release, ...checkRequest(release) });
            assert.equal(result.indexes.length, 1);
            assert.match(result.indexes[0]!.url!, /\/main\/binary-amd64\/by-hash\/SHA256\/[0-9a-f]{64}$/);
            assert.deepEqual(indexRequests(edServer), [new URL(result.indexes[0]!.url!).pathname]);
            assert.equal(result.packages.length, 3);
        });

        it("falls back from by-hash to the plain name when by-hash is missing", async () => {
            edServer.fault(/\/by-hash\//, { status: 404 });
            const release = await fetchRelease({ url: edServer.url, distribution: "stable", keys: edKeys });
            const result = await fetchPackageIndexes({ release, ...checkRequest(release) });
            assert.match(result.indexes[0]!.url!, /\/main\/binary-amd64\/Packages(\.gz|\.xz)?$/);
            assert.equal(result.packages.length, 3);
        });

        it("rejects an index whose bytes do not match the signed Release, naming the file", async () => {
            const release = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            const bogus = gzipSync("Package: evil\nVersion: 1\nArchitecture: amd64\n");
            rsaServer.fault(/^\/dists\/stable\/main\/binary-amd64\/Packages/, { replaceBody: bogus });
            await expectCode(
                fetchPackageIndexes({ release, components: ["main"], architectures: ["amd64"] }),
                "ERR_VERIFICATION",
                /^index main\/binary-amd64\/Packages(\.gz|\.xz)? of .*: GET .*\/main\/binary-amd64\/Packages.*: size mismatch/,
            );
            // Same size, different bytes: the hash catches it.
            rsaServer.clearFaults();
            const { readFile } = await import("node:fs/promises");
            const gz = await readFile(join(rsa.distDir, "main/binary-amd64/Packages.gz"));
            const plain = await readFile(join(rsa.distDir, "main/binary-amd64/Packages"));
            const flip = (b: Buffer) => {
                const copy = Buffer.from(b);
                copy[copy.length - 2] ^= 0x20;
                return copy;
            };
            rsaServer.fault("/dists/stable/main/binary-amd64/Packages.gz", { replaceBody: flip(gz) });
            rsaServer.fault("/dists/stable/main/binary-amd64/Packages", { replaceBody: flip(plain) });
            rsaServer.fault("/dists/stable/main/binary-amd64/Packages.xz", { status: 404 });
            await expectCode(
                fetchPackageIndexes({ release, components: ["main"], architectures: ["amd64"] }),
                "ERR_VERIFICATION",
                /main\/binary-amd64\/Packages(\.gz)?: SHA256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
            );
        });

        it("reports an index listed but not served as not found", async () => {
            const release = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            rsaServer.fault(/^\/dists\/stable\/contrib\/binary-arm64\//, { status: 404 });
            await expectCode(
                fetchPackageIndexes({ release, components: ["contrib"], architectures: ["arm64"] }),
                "ERR_NOT_FOUND",
                /^index contrib\/binary-arm64\/Packages of .* is listed in the Release but not served; tried .*contrib\/binary-arm64\/Packages/,
            );
        });

        it("keeps indexes in the cache: an unchanged index is not downloaded again", async () => {
            const cacheDir = await makeTempDir("index-cache");
            const release = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            const request = checkRequest(release);
            const first = await fetchPackageIndexes({ release, ...request, cacheDir });
            // Identical indexes (e.g. two empty ones) share a key: each content is downloaded once.
            const downloads = first.indexes.filter((i) => i.source === "download").map((i) => i.sha256);
            assert.equal(new Set(downloads).size, downloads.length);
            assert.equal(downloads.length, new Set(first.indexes.map((i) => i.sha256)).size);
            assert.equal(indexRequests(rsaServer).length, downloads.length);
            rsaServer.clearLog();

            const second = await fetchPackageIndexes({ release, ...request, cacheDir });
            assert.ok(second.indexes.every((i) => i.source === "cache" && i.bytes === 0));
            assert.deepEqual(indexRequests(rsaServer), []);
            const key = (p: {
                name: string;
                version: string;
                architecture: string;
                component: string;
                sha256: string;
            }) => `${p.component} ${p.name} ${p.version} ${p.architecture} ${p.sha256}`;
            assert.deepEqual(second.packages.map(key), first.packages.map(key));

            // Upstream changes one component: only its indexes are fetched again.
            await rsa.addDebs("contrib", [{ name: "extra-thing", version: "0.2" }]);
            rsaServer.clearLog();
            const changed = await fetchRelease({ url: rsaServer.url, distribution: "stable", keys: rsaKeys });
            const third = await fetchPackageIndexes({ release: changed, ...request, cacheDir });
            const downloaded = third.indexes
                .filter((i) => i.source === "download")
                .map((i) => `${i.component}/${i.architecture}`);
            assert.deepEqual(downloaded, ["contrib/amd64"]);
            assert.ok(indexRequests(rsaServer).every((p) => p.includes("/contrib/")));
            assert.ok(third.packages.some((p) => p.name === "extra-thing" && p.version === "0.2"));
        });

        it("drops a damaged cache entry and downloads the index again", async () => {
            const cacheDir = await makeTempDir("index-cache");
            const release = await fetchRelease({ url: edServer.url, distribution: "stable", keys: edKeys });
            await fetchPackageIndexes({ release, components: ["main"], architectures: ["amd64"], cacheDir });
            const entries = (await readdir(join(cacheDir, "packages"))).filter((n) => /^[0-9a-f]{64}$/.test(n));
            assert.equal(entries.length, 1);
            await writeFile(join(cacheDir, "packages", entries[0]!), "Package: injected\nVersion: 1\n");
            edServer.clearLog();
            const again = await fetchPackageIndexes({
                release,
                components: ["main"],
                architectures: ["amd64"],
                cacheDir,
            });
            assert.equal(again.indexes[0]!.source, "download");
            assert.equal(again.packages.length, 3);
            assert.ok(!again.packages.some((p) => p.name === "injected"));
        });
    });

    describe("a hostile index", () => {
        let hostile: AptRepo;
        let server: StaticServer;

        before(async () => {
            hostile = await buildRepo({
                distribution: "stable",
                components: { main: MAIN.slice(0, 1) },
                signWith: "ed25519",
            });
            const { readFile } = await import("node:fs/promises");
            const packages = await readFile(join(hostile.distDir, "main/binary-amd64/Packages"), "utf8");
            const evil = [
                "Package: evil",
                "Version: 1.0",
                "Architecture: amd64",
                "Filename: pool/main/e/evil/../../../../../etc/cron.d/evil.deb",
                "Size: 10",
                `SHA256: ${"0".repeat(64)}`,
                "Description: writes outside the pool",
                "",
            ].join("\n");
            await hostile.replaceIndex("main", "amd64", `${packages.trimEnd()}\n\n${evil}`);
            server = await startStaticServer(hostile.dir);
        });

        after(async () => {
            await server?.close();
            await hostile?.close();
        });

        it("rejects a signed index whose Filename leaves the pool", async () => {
            const keys = await loadPublicKeys(hostile.publicKeyArmored);
            const release = await fetchRelease({ url: server.url, distribution: "stable", keys });
            await expectCode(
                fetchPackageIndexes({ release, components: ["main"], architectures: ["amd64"] }),
                "ERR_PARSE",
                /^index main\/binary-amd64\/Packages(\.gz|\.xz)? of .*: package "evil": field Filename ".*" contains a "\.\." segment; refusing a path outside the pool$/,
            );
        });
    });
});
