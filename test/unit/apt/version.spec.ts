import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { hasCode } from "../../../provider/errors";
import {
    compareVersions,
    formatVersion,
    isValidVersion,
    parseVersion,
    satisfies,
    versionWarning,
} from "../../../provider/apt/version";

/** [a, b, expected sign of compareVersions(a, b)] */
const PAIRS: readonly [string, string, -1 | 0 | 1][] = [
    ["1.0", "1.0", 0],
    ["1.0", "1.1", -1],
    ["1.1", "1.0", 1],
    ["1.0", "1.0-0", 0],
    ["1.0-0", "1.0-1", -1],
    ["1.0", "1.0-1", -1],
    ["0:1.0", "1.0", 0],
    ["1:1.0", "1.0", 1],
    ["1:0.1", "2.0", 1],
    ["2:1.0", "10:0.1", -1],
    ["00001:1.0", "1:1.0", 0],
    ["1.0~rc1", "1.0", -1],
    ["1.0~~", "1.0~", -1],
    ["1.0~~a", "1.0~~", 1],
    ["1.0~", "1.0", -1],
    ["1.0~rc1", "1.0~rc2", -1],
    ["1.0~beta", "1.0~alpha", 1],
    ["1.0+b1", "1.0", 1],
    ["1.0+b1", "1.0.1", -1],
    ["1.0+dfsg", "1.0a", 1],
    ["1.0a", "1.0", 1],
    ["1.0a", "1.0.", -1],
    ["1.0A", "1.0a", -1],
    ["1.0Z", "1.0a", -1],
    ["1.0z", "1.0+", -1],
    ["1.0-1", "1.0-1ubuntu1", -1],
    ["1.0-1ubuntu1", "1.0-2", -1],
    ["1.0-1+deb12u1", "1.0-1", 1],
    ["1.0-1+deb12u1", "1.0-1+deb12u2", -1],
    ["1.0-1~bpo12+1", "1.0-1", -1],
    ["1.0-1.1", "1.0-1+b1", 1],
    ["1.01", "1.1", 0],
    ["1.001", "1.01", 0],
    ["1.010", "1.10", 0],
    ["1.0010", "1.9", 1],
    ["007", "7", 0],
    ["0", "00", 0],
    ["9", "10", -1],
    ["99", "100", -1],
    ["1.2.3", "1.2.3.0", -1],
    ["1.2.3", "1.2.10", -1],
    ["1.2-3-4", "1.2-3", 1],
    ["1.2-3-4", "1.2-3-5", -1],
    ["2.30-1", "2.4-1", 1],
    ["1:2:3", "1:2:4", -1],
    ["1:2:3", "1:2", 1],
    ["12345678901234567890", "12345678901234567891", -1],
    ["99999999999999999999999999999999999999", "100000000000000000000000000000000000000", -1],
    ["1.000000000000000000000000000000000000001", "1.1", 0],
    ["1.18446744073709551616", "1.18446744073709551615", 1],
    ["5.36.0-7+deb12u1", "5.36.0-7", 1],
    ["2.36-9+deb12u4", "2.36-9+deb12u10", -1],
    ["252.30-1~deb12u2", "252.30-1", -1],
    ["1.22.1-9", "1.22.1-9+deb12u1", -1],
    ["3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1],
    ["1.0+git20240101.abcdef-1", "1.0+git20231231.fedcba-1", 1],
    ["1.0.0~alpha+1", "1.0.0~alpha", 1],
    ["1.0~alpha+1", "1.0~alpha.1", -1],
    ["a", "b", -1],
    ["1.0", "1.0.0", -1],
    ["1", "1.", -1],
    ["1.", "1+", 1],
    ["1~", "1~~", 1],
    ["1-~", "1", -1],
    ["1-~~", "1-~", -1],
    ["1-0", "1-~", 1],
    [" 1.0 ", "1.0", 0],
    ["1.0_1", "1.0+1", 1],
    ["1.0é", "1.0z", 1],
    ["1.0é", "1.0+", -1],
    ["4:3.2.1", "3:4.5.6", 1],
    ["2147483647:1", "2147483646:9", 1],
];

/** Seeded PRNG (mulberry32) so the random cases are the same on every run. */
function prng(seed: number): () => number {
    let t = seed >>> 0;
    return () => {
        t = (t + 0x6d2b79f5) >>> 0;
        let r = Math.imul(t ^ (t >>> 15), 1 | t);
        r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
        return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
}

const PIECES = ["0", "1", "2", "9", "10", "01", "001", "123456789012345678901234", "a", "b", "z", "A", "Z"];
const SEPARATORS = [".", ".", ".", "+", "~", "~~", "-", ""];
const REVISION_PIECES = ["0", "1", "2", "10", "ubuntu", "deb12u", "bpo", "~", "+", ".", "b"];

function randomVersion(rand: () => number): string {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
    let version = "";
    if (rand() < 0.2) {
        version += `${pick(["0", "1", "2", "00", "10"])}:`;
    }
    version += pick(["0", "1", "2", "10", "01"]);
    const n = Math.floor(rand() * 4);
    for (let i = 0; i < n; i++) {
        version += pick(SEPARATORS) + pick(PIECES);
    }
    if (rand() < 0.15) {
        version += pick(["~", "~~", "+", "."]);
    }
    if (rand() < 0.5) {
        let revision = pick(["0", "1", "2", "10"]);
        const m = Math.floor(rand() * 3);
        for (let i = 0; i < m; i++) {
            revision += pick(REVISION_PIECES);
        }
        version += `-${revision}`;
    }
    return version;
}

/** dpkg's verdict on each pair: -1, 0 or 1. One shell runs every comparison. */
function dpkgCompareAll(pairs: readonly (readonly [string, string])[]): number[] {
    const script = [
        "while IFS= read -r a && IFS= read -r b; do",
        '  if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo -1;',
        '  elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo 0;',
        "  else echo 1; fi",
        "done",
    ].join("\n");
    const input = pairs.map(([a, b]) => `${a}\n${b}\n`).join("");
    const out = execFileSync("sh", ["-c", script], { input, encoding: "utf8", maxBuffer: 1 << 24 });
    return out.trim().split("\n").map(Number);
}

function dpkgAccepts(version: string): boolean {
    try {
        execFileSync("dpkg", ["--compare-versions", version, "eq", "1"], { stdio: "ignore" });
        return true;
    } catch (err) {
        const status = (err as { status?: number }).status;
        // 1 means "false", 2 means dpkg refused the version.
        return status === 1;
    }
}

function hasDpkg(): boolean {
    try {
        execFileSync("dpkg", ["--version"], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

describe("apt/version", () => {
    describe("parseVersion", () => {
        it("splits epoch, upstream and revision", () => {
            assert.deepEqual(parseVersion("1:2.36-9+deb12u4"), { epoch: 1, upstream: "2.36", revision: "9+deb12u4" });
            assert.deepEqual(parseVersion("2.36"), { epoch: 0, upstream: "2.36", revision: "" });
            assert.deepEqual(parseVersion("1.2-3-4"), { epoch: 0, upstream: "1.2-3", revision: "4" });
            assert.deepEqual(parseVersion("1:2:3-4"), { epoch: 1, upstream: "2:3", revision: "4" });
            assert.deepEqual(parseVersion("  007:1.0\t"), { epoch: 7, upstream: "1.0", revision: "" });
        });

        it("rejects what dpkg rejects, with ERR_PARSE and the reason", () => {
            const cases: [string, RegExp][] = [
                ["", /empty/],
                ["   ", /empty/],
                ["1.0 beta", /embedded spaces/],
                ["a:1.0", /epoch in version is empty/],
                ["1a:1.0", /not number/],
                ["-1:1.0", /negative/],
                ["2147483648:1", /too big/],
                ["99999999999999999999:1", /too big/],
                ["1:", /nothing after colon/],
                ["1.0-", /revision number is empty/],
                ["1:-1", /version number is empty/],
                ["-1", /version number is empty/],
                ["1\u00000", /NUL/],
            ];
            for (const [version, message] of cases) {
                assert.throws(
                    () => parseVersion(version),
                    (err: unknown) => hasCode(err, "ERR_PARSE") && message.test((err as Error).message),
                    version,
                );
                assert.throws(
                    () => compareVersions(version, "1.0"),
                    (err: unknown) => hasCode(err, "ERR_PARSE"),
                );
                assert.throws(
                    () => compareVersions("1.0", version),
                    (err: unknown) => hasCode(err, "ERR_PARSE"),
                );
            }
        });

        it("accepts with a warning what dpkg accepts with a warning", () => {
            assert.equal(versionWarning("abc"), "version number does not start with digit");
            assert.equal(versionWarning("1.0_1"), "invalid character in version number");
            assert.equal(versionWarning("1.0-1_2"), "invalid character in revision number");
            assert.equal(versionWarning("1.0-1"), undefined);
            assert.equal(isValidVersion("abc"), false);
            assert.equal(isValidVersion("1:"), false);
            assert.equal(isValidVersion("1:1.0~rc1-0ubuntu1"), true);
            assert.deepEqual(parseVersion("+1:2"), { epoch: 1, upstream: "2", revision: "" });
        });

        it("formats back", () => {
            for (const v of ["1:2.36-9+deb12u4", "2.36", "1.2-3-4"]) {
                assert.equal(formatVersion(parseVersion(v)), v);
            }
            assert.equal(formatVersion(parseVersion("0:1.0")), "1.0");
        });
    });

    describe("compareVersions", () => {
        it(`orders the ${PAIRS.length} table pairs`, () => {
            for (const [a, b, expected] of PAIRS) {
                assert.equal(compareVersions(a, b), expected, `${a} vs ${b}`);
                assert.equal(compareVersions(b, a), expected === 0 ? 0 : -expected, `${b} vs ${a}`);
            }
        });

        it("is a total order usable by Array.sort", () => {
            const versions = ["1.0", "1.0~rc1", "1:0.1", "1.0-1", "1.0+b1", "0.9", "1.0~~", "1.0a"];
            assert.deepEqual(versions.sort(compareVersions), [
                "0.9",
                "1.0~~",
                "1.0~rc1",
                "1.0",
                "1.0-1",
                "1.0a",
                "1.0+b1",
                "1:0.1",
            ]);
        });
    });

    describe("satisfies", () => {
        it("applies every operator", () => {
            assert.equal(satisfies("2.36-9", ">=", "2.34"), true);
            assert.equal(satisfies("2.34", ">=", "2.34"), true);
            assert.equal(satisfies("2.33", ">=", "2.34"), false);
            assert.equal(satisfies("2.0~rc1", "<<", "2.0~"), false);
            assert.equal(satisfies("2.0~~", "<<", "2.0~"), true);
            assert.equal(satisfies("1.0", "<=", "1.0-0"), true);
            assert.equal(satisfies("1.0", "=", "0:1.0-0"), true);
            assert.equal(satisfies("1.0", "=", "1.0-1"), false);
            assert.equal(satisfies("1.1", ">>", "1.0"), true);
            assert.equal(satisfies("1.0", ">>", "1.0"), false);
            assert.equal(satisfies("1.0", "<<", "1.0"), false);
            // Obsolete spellings: `<` is `<=` and `>` is `>=`.
            assert.equal(satisfies("1.0", "<", "1.0"), true);
            assert.equal(satisfies("1.0", ">", "1.0"), true);
            assert.equal(satisfies("0.9", ">", "1.0"), false);
        });

        it("rejects an unknown operator", () => {
            assert.throws(
                () => satisfies("1", "!=" as never, "1"),
                (err: unknown) => hasCode(err, "ERR_INVALID_ARGUMENT"),
            );
        });
    });

    describe("agrees with dpkg --compare-versions", function () {
        this.timeout(120_000);
        before(function () {
            if (!hasDpkg()) {
                this.skip();
            }
        });

        it("on every table pair", () => {
            const verdicts = dpkgCompareAll(PAIRS.map(([a, b]) => [a, b] as const));
            PAIRS.forEach(([a, b, expected], i) => {
                assert.equal(verdicts[i], expected, `dpkg orders ${a} vs ${b} as ${verdicts[i]}`);
            });
        });

        it("on 500 random pairs (seeded)", () => {
            const rand = prng(20240611);
            const pairs: [string, string][] = [];
            for (let i = 0; i < 500; i++) {
                const a = randomVersion(rand);
                // One pair in four shares a prefix, to reach the deeper comparison branches.
                const b = rand() < 0.25 ? a + randomVersion(rand).replace(/^\d+:/, "").slice(1) : randomVersion(rand);
                pairs.push([a, b]);
            }
            const verdicts = dpkgCompareAll(pairs);
            assert.equal(verdicts.length, pairs.length);
            pairs.forEach(([a, b], i) => {
                let ours: number | string;
                try {
                    ours = compareVersions(a, b);
                } catch (err) {
                    ours = (err as Error).message;
                }
                assert.equal(ours, verdicts[i], `${a} vs ${b}`);
            });
        });

        it("on which versions are refused", () => {
            const candidates = ["1:", "a:1", "1.0-", "1:-1", "1 2", "2147483648:1", "abc", "1_0", "+1:2", "1:2:3"];
            for (const v of candidates) {
                assert.equal(isRejected(v), !dpkgAccepts(v), v);
            }
        });
    });
});

function isRejected(version: string): boolean {
    try {
        parseVersion(version);
        return false;
    } catch {
        return true;
    }
}
