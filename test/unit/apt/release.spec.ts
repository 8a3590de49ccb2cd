import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import {
    extractClearsigned,
    formatRelease,
    formatReleaseDate,
    indexCandidates,
    isReleaseExpired,
    lookupIndex,
    packagesIndexCandidates,
    parseRelease,
    parseReleaseDate,
    type ReleaseContent,
    type ReleaseFile,
} from "../../../provider/apt/release";
import { hasCode } from "../../../provider/errors";

const H1 = "a".repeat(64);
const H2 = "b".repeat(64);
const H3 = "c".repeat(64);
const H4 = "d".repeat(64);

const DEBIAN_LIKE = `Origin: Debian
Label: Debian
Suite: stable
Version: 12.5
Codename: bookworm
Changelogs: https://metadata.ftp-master.debian.org/changelogs/@CHANGEPATH@_changelog
Date: Sat, 10 Feb 2024 10:07:24 UTC
Valid-Until: Sat, 17 Feb 2024 10:07:24 +0100
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib non-free-firmware
Description: Debian 12.5 Released 10 February 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
 ffffffffffffffffffffffffffffffff      100 main/binary-amd64/Packages.bz2
 11111111111111111111111111111111     2000 main/binary-amd64/Packages
SHA256:
 ${H1}  1484322 contrib/Contents-all
 ${H2}     2000 main/binary-amd64/Packages
 ${H3}      400 main/binary-amd64/Packages.gz
 ${H4}      300 main/binary-amd64/Packages.xz
 ${H1}      350 main/binary-arm64/Packages.gz
 ${H2}      120 Packages.xz
`;

function parseErrorMatching(pattern: RegExp) {
    return (err: unknown) => hasCode(err, "ERR_PARSE") && pattern.test((err as Error).message);
}

function hasTool(tool: string, args: string[] = ["--version"]): boolean {
    return spawnSync(tool, args, { stdio: "ignore" }).status === 0;
}

function sha256(data: Buffer): string {
    return createHash("sha256").update(data).digest("hex");
}

/** Writes a small suite (`dists/<suite>/...`) and returns its files as the Release must list them. */
function writeSuite(suiteDir: string): ReleaseFile[] {
    const stanza = (name: string, arch: string) =>
        `Package: ${name}\nVersion: 1.0-1\nArchitecture: ${arch}\nMaintainer: Test <test@example.org>\n` +
        `Filename: pool/main/${name[0]}/${name}/${name}_1.0-1_${arch}.deb\nSize: 1\n` +
        `SHA256: ${sha256(Buffer.from("x"))}\nDescription: test package ${name}\n`;
    const files: ReleaseFile[] = [];
    const add = (path: string, data: Buffer) => {
        mkdirSync(dirname(join(suiteDir, path)), { recursive: true });
        writeFileSync(join(suiteDir, path), data);
        files.push({ path, size: data.length, sha256: sha256(data) });
    };
    const amd64 = Buffer.from(`${stanza("hello-airgap", "amd64")}\n${stanza("other-airgap", "amd64")}`);
    add("main/binary-amd64/Packages", amd64);
    add("main/binary-amd64/Packages.gz", gzipSync(amd64));
    add("main/binary-arm64/Packages.gz", gzipSync(Buffer.from(stanza("hello-airgap", "arm64"))));
    add("contrib/binary-amd64/Packages", Buffer.alloc(0));
    return files;
}

describe("apt/release", () => {
    describe("parseRelease", () => {
        it("reads the header fields", () => {
            const release = parseRelease(DEBIAN_LIKE);
            assert.equal(release.origin, "Debian");
            assert.equal(release.label, "Debian");
            assert.equal(release.suite, "stable");
            assert.equal(release.version, "12.5");
            assert.equal(release.codename, "bookworm");
            assert.equal(release.description, "Debian 12.5 Released 10 February 2024");
            assert.equal(release.date?.toISOString(), "2024-02-10T10:07:24.000Z");
            assert.equal(release.validUntil?.toISOString(), "2024-02-17T09:07:24.000Z");
            assert.deepEqual(release.architectures, ["all", "amd64", "arm64"]);
            assert.deepEqual(release.components, ["main", "contrib", "non-free-firmware"]);
            assert.equal(release.acquireByHash, true);
            assert.equal(release.notAutomatic, false);
            assert.equal(release.stanza.get("No-Support-for-Architecture-all"), "Packages");
        });

        it("merges the checksum sections per file", () => {
            const release = parseRelease(DEBIAN_LIKE);
            assert.equal(release.files.length, 7);
            assert.deepEqual(lookupIndex(release, "main/binary-amd64/Packages"), {
                path: "main/binary-amd64/Packages",
                size: 2000,
                sha256: H2,
                md5: "11111111111111111111111111111111",
            });
            assert.deepEqual(lookupIndex(release, "main/binary-amd64/Packages.bz2"), {
                path: "main/binary-amd64/Packages.bz2",
                size: 100,
                md5: "ffffffffffffffffffffffffffffffff",
            });
            assert.equal(lookupIndex(release, "main/binary-i386/Packages"), undefined);
            assert.deepEqual(
                release.files.slice(0, 2).map((f) => f.path),
                ["contrib/Contents-all", "main/binary-amd64/Packages"],
            );
        });

        it("tells when it has expired", () => {
            const release = parseRelease(DEBIAN_LIKE);
            assert.equal(isReleaseExpired(release, new Date("2024-02-17T09:00:00Z")), false);
            assert.equal(isReleaseExpired(release, new Date("2024-02-17T09:10:00Z")), true);
            assert.equal(isReleaseExpired(parseRelease("Suite: x\n"), new Date()), false);
        });

        it("refuses malformed or hostile content", () => {
            const cases: [string, RegExp][] = [
                ["Date: yesterday\n", /Date is not an RFC 2822 date/],
                ["Date: Sat, 31 Feb 2024 10:07:24 UTC\n", /Date/],
                ["Valid-Until: Sat, 10 Feb 2024 10:07:24\n", /Valid-Until/],
                [`SHA256:\n ${H1} 12\n`, /malformed SHA256 line/],
                [`SHA256:\n ${H1.slice(2)} 12 main/x\n`, /malformed SHA256 line/],
                [`SHA256:\n ${H1} 1x main/x\n`, /malformed SHA256 line/],
                [
                    `SHA256:\n ${H1} 12 ../../etc/passwd\n`,
                    /"\.\.\/\.\.\/etc\/passwd" in SHA256 contains a ".." segment/,
                ],
                [`SHA256:\n ${H1} 12 /etc/passwd\n`, /absolute/],
                [`MD5Sum:\n ${"0".repeat(32)} 11 main/x\nSHA256:\n ${H1} 12 main/x\n`, /sizes 12 and 11/],
                [`SHA256:\n ${H1} 12 main/x\n ${H2} 12 main/x\n`, /twice/],
                ["Suite: a\n\nSuite: b\n", /one stanza, found 2/],
            ];
            for (const [text, pattern] of cases) {
                assert.throws(() => parseRelease(text), parseErrorMatching(pattern), text);
            }
        });
    });

    describe("dates", () => {
        it("parses the forms found in Release files", () => {
            const iso = (text: string) => parseReleaseDate(text)?.toISOString();
            assert.equal(iso("Sat, 10 Feb 2024 10:07:24 UTC"), "2024-02-10T10:07:24.000Z");
            assert.equal(iso("Sat, 10 Feb 2024 10:07:24 GMT"), "2024-02-10T10:07:24.000Z");
            assert.equal(iso("Sat, 10 Feb 2024 10:07:24 +0000"), "2024-02-10T10:07:24.000Z");
            assert.equal(iso("Sat, 10 Feb 2024 10:07:24 -0130"), "2024-02-10T11:37:24.000Z");
            assert.equal(iso("10 Feb 2024 10:07:24 UTC"), "2024-02-10T10:07:24.000Z");
            assert.equal(iso("Sat,  1 Jun 2024 01:02:03 UTC"), "2024-06-01T01:02:03.000Z");
            assert.equal(iso("Sat, 10 Foo 2024 10:07:24 UTC"), undefined);
            assert.equal(iso("2024-02-10T10:07:24Z"), undefined);
        });

        it("formats as Debian's archive does and parses back", () => {
            const date = new Date("2024-06-01T01:02:03Z");
            assert.equal(formatReleaseDate(date), "Sat, 01 Jun 2024 01:02:03 UTC");
            assert.equal(parseReleaseDate(formatReleaseDate(date))?.getTime(), date.getTime());
        });
    });

    describe("indexCandidates", () => {
        it("offers the Packages variants with a SHA256, xz before gz before plain, with by-hash paths", () => {
            const release = parseRelease(DEBIAN_LIKE);
            const candidates = packagesIndexCandidates(release, "main", "amd64");
            assert.deepEqual(candidates, [
                {
                    path: "main/binary-amd64/Packages.xz",
                    compression: "xz",
                    size: 300,
                    sha256: H4,
                    byHashPath: `main/binary-amd64/by-hash/SHA256/${H4}`,
                    uncompressed: { size: 2000, sha256: H2 },
                },
                {
                    path: "main/binary-amd64/Packages.gz",
                    compression: "gz",
                    size: 400,
                    sha256: H3,
                    byHashPath: `main/binary-amd64/by-hash/SHA256/${H3}`,
                    uncompressed: { size: 2000, sha256: H2 },
                },
                {
                    path: "main/binary-amd64/Packages",
                    compression: "none",
                    size: 2000,
                    sha256: H2,
                    byHashPath: `main/binary-amd64/by-hash/SHA256/${H2}`,
                },
            ]);
            const arm64 = packagesIndexCandidates(release, "main", "arm64");
            assert.deepEqual(
                arm64.map((c) => c.path),
                ["main/binary-arm64/Packages.gz"],
            );
            assert.equal(arm64[0].uncompressed, undefined);
            assert.deepEqual(packagesIndexCandidates(release, "contrib", "amd64"), []);
        });

        it("leaves out variants without a SHA256 and follows the given preference", () => {
            const release = parseRelease(DEBIAN_LIKE);
            const candidates = packagesIndexCandidates(release, "main", "amd64", {
                compressions: ["bz2", "none", "gz"],
            });
            assert.deepEqual(
                candidates.map((c) => c.path),
                ["main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"],
            );
        });

        it("handles flat repositories and suites without Acquire-By-Hash", () => {
            const flat = indexCandidates(parseRelease(DEBIAN_LIKE), "Packages");
            assert.deepEqual(flat, [
                {
                    path: "Packages.xz",
                    compression: "xz",
                    size: 120,
                    sha256: H2,
                    byHashPath: `by-hash/SHA256/${H2}`,
                },
            ]);
            const plain = parseRelease(DEBIAN_LIKE.replace("Acquire-By-Hash: yes\n", ""));
            assert.equal(packagesIndexCandidates(plain, "main", "amd64")[0].byHashPath, undefined);
        });
    });

    describe("extractClearsigned", () => {
        const SIGNATURE = "-----BEGIN PGP SIGNATURE-----\n\niHUEARYKAB0WIQ\n=l6oc\n-----END PGP SIGNATURE-----\n";
        const message = (body: string, headers = "Hash: SHA512\n") =>
            `-----BEGIN PGP SIGNED MESSAGE-----\n${headers}\n${body}\n${SIGNATURE}`;

        it("undoes dash-escaping and keeps the signature block", () => {
            const result = extractClearsigned(message("Origin: X\n- -dash\n- From here\nSuite: s"));
            assert.equal(result.payload, "Origin: X\n-dash\nFrom here\nSuite: s");
            assert.deepEqual(result.hashes, ["SHA512"]);
            assert.equal(result.signature, SIGNATURE);
        });

        it("accepts CRLF and blank lines around the message", () => {
            const text = `\n\n${message("Origin: X\nSuite: s")}\n\n`.replace(/\n/g, "\r\n");
            const result = extractClearsigned(text);
            assert.equal(result.payload, "Origin: X\nSuite: s");
            assert.equal(result.signature, SIGNATURE);
            assert.deepEqual(extractClearsigned(message("Suite: s", "Hash: SHA256, SHA512\n")).hashes, [
                "SHA256",
                "SHA512",
            ]);
        });

        it("refuses anything that could smuggle unsigned content", () => {
            const cases: [string, RegExp][] = [
                ["Origin: X\nSuite: s\n", /BEGIN PGP SIGNED MESSAGE/],
                [`Origin: Evil\n${message("Suite: s")}`, /at the start/],
                [`${message("Suite: s")}Origin: Evil\n`, /data after the signature/],
                [`${message("Suite: s")}${message("Suite: t")}`, /data after the signature/],
                [message("Suite: s", "Hash: SHA512\nComment: hi\n"), /armor header/],
                [message("Suite: s\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nSuite: t"), /armor line/],
                [message("Suite: s").replace("-----END PGP SIGNATURE-----\n", ""), /END PGP SIGNATURE/],
                [message("Suite: s").replace(/-----BEGIN PGP SIGNATURE-----[\s\S]*$/, ""), /BEGIN PGP SIGNATURE/],
                ["-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512", /blank line/],
            ];
            for (const [text, pattern] of cases) {
                assert.throws(() => extractClearsigned(text), parseErrorMatching(pattern), text);
            }
        });

        it("returns exactly the text gpg signed", function () {
            this.timeout(60_000);
            if (!hasTool("gpg")) {
                this.skip();
            }
            const home = mkdtempSync(join(tmpdir(), "airgap-gpg-"));
            try {
                const env = { ...process.env, GNUPGHOME: home };
                const gpg = (...args: string[]) =>
                    execFileSync("gpg", ["--batch", "--no-tty", ...args], { env, stdio: ["ignore", "pipe", "ignore"] });
                gpg(
                    "--passphrase",
                    "",
                    "--quick-gen-key",
                    "Airgap Test <test@example.org>",
                    "ed25519",
                    "sign",
                    "never",
                );
                const text = `${DEBIAN_LIKE}-leading dash\n- dash space\nFrom the start\ntrailing blanks   \n`;
                writeFileSync(join(home, "Release"), text);
                gpg(
                    "--yes",
                    "--clearsign",
                    "--digest-algo",
                    "SHA512",
                    "-o",
                    join(home, "InRelease"),
                    join(home, "Release"),
                );
                const signed = readFileSync(join(home, "InRelease"), "utf8");
                const { payload, hashes, signature } = extractClearsigned(signed);
                assert.equal(`${payload}\n`, text);
                assert.deepEqual(hashes, ["SHA512"]);
                assert.match(signature, /^-----BEGIN PGP SIGNATURE-----\n[\s\S]*\n-----END PGP SIGNATURE-----\n$/);
                // gpg's own reading of the signed text (it drops trailing blanks, as RFC 4880 says).
                const decoded = gpg("--decrypt", join(home, "InRelease")).toString("utf8");
                const trimmed = payload
                    .split("\n")
                    .map((line) => line.trimEnd())
                    .join("\n");
                assert.equal(decoded, `${trimmed}\n`);
            } finally {
                rmSync(home, { recursive: true, force: true });
            }
        });
    });

    describe("formatRelease", () => {
        const content: ReleaseContent = {
            origin: "Airgap",
            label: "Airgap mirror",
            suite: "stable",
            version: "1.0",
            codename: "bookworm",
            date: new Date("2024-06-01T01:02:03Z"),
            validUntil: new Date("2024-06-08T01:02:03Z"),
            architectures: ["amd64", "arm64"],
            components: ["main", "contrib"],
            description: "Mirror of Debian bookworm",
            acquireByHash: true,
            files: [
                { path: "main/binary-amd64/Packages.gz", size: 400, sha256: H3 },
                { path: "main/binary-amd64/Packages", size: 123456789, sha256: H2.toUpperCase() },
            ],
        };

        it("writes the header and a sorted SHA256 section in apt-ftparchive's layout", () => {
            assert.equal(
                formatRelease(content),
                [
                    "Origin: Airgap",
                    "Label: Airgap mirror",
                    "Suite: stable",
                    "Version: 1.0",
                    "Codename: bookworm",
                    "Date: Sat, 01 Jun 2024 01:02:03 UTC",
                    "Valid-Until: Sat, 08 Jun 2024 01:02:03 UTC",
                    "Acquire-By-Hash: yes",
                    "Architectures: amd64 arm64",
                    "Components: main contrib",
                    "Description: Mirror of Debian bookworm",
                    "SHA256:",
                    ` ${H2}        123456789 main/binary-amd64/Packages`,
                    ` ${H3}              400 main/binary-amd64/Packages.gz`,
                    "",
                ].join("\n"),
            );
        });

        it("round-trips through parseRelease", () => {
            const withWeakHashes: ReleaseContent = {
                ...content,
                notAutomatic: true,
                butAutomaticUpgrades: true,
                files: content.files.map((f, i) => ({ ...f, md5: String(i).repeat(32), sha1: String(i).repeat(40) })),
            };
            const parsed = parseRelease(formatRelease(withWeakHashes));
            assert.equal(parsed.origin, content.origin);
            assert.equal(parsed.label, content.label);
            assert.equal(parsed.suite, content.suite);
            assert.equal(parsed.version, content.version);
            assert.equal(parsed.codename, content.codename);
            assert.equal(parsed.description, content.description);
            assert.equal(parsed.date?.getTime(), content.date.getTime());
            assert.equal(parsed.validUntil?.getTime(), content.validUntil?.getTime());
            assert.deepEqual(parsed.architectures, content.architectures);
            assert.deepEqual(parsed.components, content.components);
            assert.equal(parsed.acquireByHash, true);
            assert.equal(parsed.notAutomatic, true);
            assert.equal(parsed.butAutomaticUpgrades, true);
            assert.deepEqual(
                [...parsed.files].sort((a, b) => a.size - b.size),
                [...withWeakHashes.files]
                    .map((f) => ({ ...f, sha256: f.sha256?.toLowerCase() }))
                    .sort((a, b) => a.size - b.size),
            );
            assert.match(formatRelease(withWeakHashes), /\nMD5Sum:\n[\s\S]*\nSHA1:\n[\s\S]*\nSHA256:\n/);
        });

        it("refuses invalid content", () => {
            const invalid = (argument: RegExp) => (err: unknown) =>
                hasCode(err, "ERR_INVALID_ARGUMENT") && argument.test((err as Error).message);
            const file = content.files[0];
            assert.throws(() => formatRelease({ ...content, suite: "a\nb" }), invalid(/^suite/));
            assert.throws(
                () => formatRelease({ ...content, components: ["main contrib"] }),
                invalid(/^components\[0\]/),
            );
            assert.throws(() => formatRelease({ ...content, date: new Date("x") }), invalid(/^date/));
            const badFiles: [ReleaseFile, RegExp][] = [
                [{ ...file, path: "../x" }, /"\.\." segment/],
                [{ ...file, path: "a b" }, /white space/],
                [{ ...file, size: -1 }, /size/],
                [{ ...file, sha256: undefined }, /SHA256/],
                [{ ...file, sha256: "xyz" }, /SHA256/],
                [{ ...file, md5: "abc" }, /MD5Sum/],
            ];
            for (const [bad, pattern] of badFiles) {
                assert.throws(() => formatRelease({ ...content, files: [bad] }), invalid(pattern), bad.path);
            }
            assert.throws(() => formatRelease({ ...content, files: [file, file] }), invalid(/twice/));
        });

        it("lists the files exactly as apt-ftparchive release does", function () {
            this.timeout(60_000);
            if (!hasTool("apt-ftparchive")) {
                this.skip();
            }
            const root = mkdtempSync(join(tmpdir(), "airgap-ftparchive-"));
            try {
                const files = writeSuite(root);
                const option = (name: string, value: string) => ["-o", `APT::FTPArchive::Release::${name}=${value}`];
                const theirs = execFileSync(
                    "apt-ftparchive",
                    [
                        ...option("MD5", "false"),
                        ...option("SHA1", "false"),
                        ...option("SHA512", "false"),
                        ...option("Origin", "Airgap"),
                        ...option("Suite", "stable"),
                        ...option("Codename", "bookworm"),
                        ...option("Architectures", "amd64 arm64"),
                        ...option("Components", "main contrib"),
                        ...option("Acquire-By-Hash", "yes"),
                        "release",
                        ".",
                    ],
                    { cwd: root, encoding: "utf8" },
                );
                const theirRelease = parseRelease(theirs);
                const ours = formatRelease({
                    origin: "Airgap",
                    suite: "stable",
                    codename: "bookworm",
                    date: theirRelease.date ?? new Date(),
                    architectures: ["amd64", "arm64"],
                    components: ["main", "contrib"],
                    acquireByHash: true,
                    files,
                });
                const section = (text: string) => text.slice(text.indexOf("\nSHA256:\n") + 1).split("\n");
                const sortedTheirs = section(theirs).sort();
                assert.deepEqual(section(ours).sort(), sortedTheirs);
                const ourRelease = parseRelease(ours);
                for (const key of [
                    "origin",
                    "suite",
                    "codename",
                    "architectures",
                    "components",
                    "acquireByHash",
                ] as const) {
                    assert.deepEqual(ourRelease[key], theirRelease[key], key);
                }
                assert.equal(ourRelease.date?.getTime(), theirRelease.date?.getTime());
                assert.deepEqual(ourRelease.files, theirRelease.files);
            } finally {
                rmSync(root, { recursive: true, force: true });
            }
        });

        it("is accepted by apt-get update, which checks every listed hash", function () {
            this.timeout(120_000);
            if (!hasTool("apt-get") || !hasTool("apt-cache")) {
                this.skip();
            }
            const root = mkdtempSync(join(tmpdir(), "airgap-apt-"));
            try {
                const suiteDir = join(root, "repo", "dists", "stable");
                const files = writeSuite(suiteDir);
                for (const dir of [
                    "etc/apt.conf.d",
                    "etc/preferences.d",
                    "etc/sources.list.d",
                    "state/lists/partial",
                ]) {
                    mkdirSync(join(root, dir), { recursive: true });
                }
                mkdirSync(join(root, "cache", "archives", "partial"), { recursive: true });
                writeFileSync(join(root, "status"), "");
                writeFileSync(
                    join(root, "etc", "sources.list"),
                    `deb [trusted=yes] file:${join(root, "repo")} stable main contrib\n`,
                );
                // Options through APT_CONFIG: `-o` comes too late to move Dir::Etc.
                const conf = [
                    `Dir::Etc "${join(root, "etc")}";`,
                    `Dir::State "${join(root, "state")}";`,
                    `Dir::Cache "${join(root, "cache")}";`,
                    `Dir::State::status "${join(root, "status")}";`,
                    'Debug::NoLocking "1";',
                    'APT::Architecture "amd64";',
                    'APT::Architectures { "amd64"; "arm64"; };',
                    'Acquire::Languages "none";',
                    ...(process.getuid?.() === 0 ? ['APT::Sandbox::User "root";'] : []),
                ];
                writeFileSync(join(root, "apt.conf"), `${conf.join("\n")}\n`);
                const env = { ...process.env, APT_CONFIG: join(root, "apt.conf") };
                const update = (release: string) => {
                    writeFileSync(join(suiteDir, "Release"), release);
                    rmSync(join(root, "state", "lists"), { recursive: true, force: true });
                    mkdirSync(join(root, "state", "lists", "partial"), { recursive: true });
                    return spawnSync("apt-get", ["update"], { encoding: "utf8", env });
                };
                // apt only fetches an index whose uncompressed path the Release lists; Debian's archive lists
                // it without shipping it, and so do we here for arm64.
                const unzipped = gunzipSync(readFileSync(join(suiteDir, "main/binary-arm64/Packages.gz")));
                files.push({ path: "main/binary-arm64/Packages", size: unzipped.length, sha256: sha256(unzipped) });
                const content: ReleaseContent = {
                    origin: "Airgap",
                    suite: "stable",
                    codename: "bookworm",
                    date: new Date(Date.now() - 60_000),
                    validUntil: new Date(Date.now() + 86_400_000),
                    architectures: ["amd64", "arm64"],
                    components: ["main", "contrib"],
                    files,
                };
                const good = update(formatRelease(content));
                assert.equal(good.status, 0, good.stdout + good.stderr);
                assert.doesNotMatch(good.stdout + good.stderr, /^(W|E):/m);
                for (const name of ["hello-airgap:arm64", "other-airgap:amd64"]) {
                    const show = execFileSync("apt-cache", ["show", name], { encoding: "utf8", env });
                    assert.match(show, /Version: 1\.0-1/);
                }

                // Control: the same Release with one wrong hash is refused, so apt really checked ours.
                const tampered = files.map((f) =>
                    f.path === "main/binary-arm64/Packages.gz" ? { ...f, sha256: "0".repeat(64) } : f,
                );
                const bad = update(formatRelease({ ...content, files: tampered }));
                assert.match(bad.stdout + bad.stderr, /Hash Sum mismatch|Failed to fetch/);
            } finally {
                rmSync(root, { recursive: true, force: true });
            }
        });
    });
});
