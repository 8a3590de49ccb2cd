import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
    eachStanza,
    formatStanza,
    parseSourceField,
    parseStanzas,
    parseStanzasFrom,
    splitLines,
    toPackageRecord,
    unsafePathReason,
} from "../../../provider/apt/control";
import type { Stanza } from "../../../provider/apt/types";
import { hasCode } from "../../../provider/errors";

const SHA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";

function stanzaText(fields: Record<string, string>): string {
    return Object.entries(fields)
        .map(([k, v]) => `${k}: ${v}\n`)
        .join("");
}

function pkg(overrides: Record<string, string | undefined> = {}): Stanza {
    const fields: Record<string, string> = {};
    const base: Record<string, string | undefined> = {
        Package: "nginx",
        Version: "1.22.1-9",
        Architecture: "amd64",
        Filename: "pool/main/n/nginx/nginx_1.22.1-9_amd64.deb",
        Size: "1234",
        SHA256: SHA,
        ...overrides,
    };
    for (const [k, v] of Object.entries(base)) {
        if (v !== undefined) {
            fields[k] = v;
        }
    }
    return parseStanzas(stanzaText(fields))[0];
}

async function collect(iterable: AsyncIterable<Stanza>): Promise<Stanza[]> {
    const out: Stanza[] = [];
    for await (const s of iterable) {
        out.push(s);
    }
    return out;
}

function parseErrorMatching(pattern: RegExp) {
    return (err: unknown) => hasCode(err, "ERR_PARSE") && pattern.test((err as Error).message);
}

describe("apt/control", () => {
    describe("parseStanzas", () => {
        it("reads fields, continuation lines and the ' .' empty line", () => {
            const text = [
                "Package: hello",
                "Version: 2.10-3",
                "Description: example package",
                " The first line of the long description.",
                " .",
                "  A verbatim line.",
                "",
                "Package: other",
                "Version: 1",
                "",
            ].join("\n");
            const [a, b, ...rest] = parseStanzas(text);
            assert.equal(rest.length, 0);
            assert.deepEqual(a.order, ["Package", "Version", "Description"]);
            assert.equal(a.get("package"), "hello");
            assert.equal(a.get("VERSION"), "2.10-3");
            assert.equal(
                a.get("Description"),
                "example package\nThe first line of the long description.\n\n A verbatim line.",
            );
            assert.equal(a.get("Missing"), undefined);
            assert.equal(a.raw, text.split("\n\n")[0]);
            assert.equal(b.get("Package"), "other");
        });

        it("accepts CRLF, a missing final newline, several blank lines and blank lines with spaces", () => {
            const text = "\r\n\r\nPackage: a\r\nVersion: 1\r\n\r\n \t\r\n\r\nPackage: b\r\nDescription: x\r\n y";
            const stanzas = parseStanzas(text);
            assert.equal(stanzas.length, 2);
            assert.equal(stanzas[0].get("Version"), "1");
            assert.equal(stanzas[0].raw, "Package: a\nVersion: 1");
            assert.equal(stanzas[1].get("Description"), "x\ny");
        });

        it("trims values, keeps an empty first line of a multiline field", () => {
            const [s] = parseStanzas("Package:   spaced  \nSHA256:\n abc 1 main/x\n def 2 main/y  \nEmpty:\n");
            assert.equal(s.get("Package"), "spaced");
            assert.equal(s.get("SHA256"), "\nabc 1 main/x\ndef 2 main/y");
            assert.equal(s.get("Empty"), "");
        });

        it("skips comment lines only in the first column", () => {
            const text =
                "# leading comment\nPackage: a\n# between fields\nDescription: x\n # not a comment\n# c\n more\n";
            const [s, ...rest] = parseStanzas(text);
            assert.equal(rest.length, 0);
            assert.deepEqual(s.order, ["Package", "Description"]);
            assert.equal(s.get("Description"), "x\n# not a comment\nmore");
            assert.equal(s.raw, "Package: a\n# between fields\nDescription: x\n # not a comment\n# c\n more");
            assert.deepEqual(parseStanzas("# only a comment\n\n# another\n"), []);
        });

        it("reads field names with their original spelling and a colon in the value", () => {
            const [s] = parseStanzas("X-Custom-Field: a: b\nmulti-arch: same\n");
            assert.deepEqual(s.order, ["X-Custom-Field", "multi-arch"]);
            assert.equal(s.get("x-custom-field"), "a: b");
            assert.equal(s.get("Multi-Arch"), "same");
        });

        it("gives every field once in entries(), as get() does, and does not take a name for another it starts", () => {
            const text =
                "Package: a\nPackage-Type: udeb\nSize-Extra: 9\n# c\nSize: 12\nDescription: x\n .\n # y\n# z\n w  \n";
            const [s] = parseStanzas(text);
            assert.deepEqual(s.entries(), [
                ["Package", "a"],
                ["Package-Type", "udeb"],
                ["Size-Extra", "9"],
                ["Size", "12"],
                ["Description", "x\n\n# y\nw"],
            ]);
            for (const [name, value] of s.entries()) {
                assert.equal(s.get(name), value);
                assert.equal(s.get(name.toUpperCase()), value);
            }
            assert.equal(s.get("Packag"), undefined);
            assert.equal(s.get("Size-"), undefined);
            assert.equal(s.get("#"), undefined);
        });

        it("holds a parsed index in about the memory of its text", () => {
            const parts: string[] = [];
            for (let i = 0; i < 20_000; i++) {
                parts.push(
                    `Package: pkg${i}\nVersion: 1.${i}-1\nArchitecture: amd64\nMaintainer: M <m@example.invalid>\n` +
                        `Depends: libc6 (>= 2.34), pkg${i + 1}\nSection: libs\nPriority: optional\n` +
                        `Filename: pool/main/p/pkg${i}/pkg${i}_1.${i}-1_amd64.deb\nSize: ${i * 10}\nSHA256: ${SHA}\n` +
                        `Description: package number ${i}\n Long text for package ${i}.\n .\n Second paragraph.\n`,
                );
            }
            const text = parts.join("\n");
            setFlagsFromString("--expose-gc");
            const gc = runInNewContext("gc") as () => void;
            gc();
            const before = process.memoryUsage().heapUsed;
            const stanzas = parseStanzas(text);
            gc();
            const held = process.memoryUsage().heapUsed - before;
            assert.equal(stanzas.length, 20_000);
            // As maps of values it took about three times its text; as text, the text and a little.
            assert.ok(held < text.length * 0.5, `parsed stanzas hold ${held} bytes beyond a text of ${text.length}`);
        });

        it("reports malformed lines with their number", () => {
            assert.throws(() => parseStanzas("Package: a\nno colon here\n"), parseErrorMatching(/line 2/));
            assert.throws(() => parseStanzas(" continuation first\n"), parseErrorMatching(/continuation/));
            assert.throws(() => parseStanzas("Package: a\npackage: b\n"), parseErrorMatching(/duplicate/));
            assert.throws(() => parseStanzas(": value\n"), parseErrorMatching(/expected/));
            assert.throws(() => parseStanzas("-----BEGIN PGP SIGNED MESSAGE-----\n"), parseErrorMatching(/line 1/));
        });

        it("parses 20,000 generated stanzas", () => {
            const parts: string[] = [];
            for (let i = 0; i < 20_000; i++) {
                parts.push(
                    `Package: pkg${i}\nVersion: 1.${i}-1\nArchitecture: amd64\nDepends: libc6 (>= 2.34), pkg${i + 1}\n` +
                        `Filename: pool/main/p/pkg${i}/pkg${i}_1.${i}-1_amd64.deb\nSize: ${i * 10}\nSHA256: ${SHA}\n` +
                        `Description: package number ${i}\n Long text for package ${i}.\n .\n Second paragraph.\n`,
                );
            }
            const stanzas = parseStanzas(parts.join("\n"));
            assert.equal(stanzas.length, 20_000);
            assert.equal(stanzas[0].get("Package"), "pkg0");
            assert.equal(stanzas[12345].get("Version"), "1.12345-1");
            assert.equal(stanzas[19999].get("Size"), "199990");
            assert.equal(
                stanzas[777].get("Description"),
                "package number 777\nLong text for package 777.\n\nSecond paragraph.",
            );
            const record = toPackageRecord(stanzas[42], "main");
            assert.equal(record.filename, "pool/main/p/pkg42/pkg42_1.42-1_amd64.deb");
            assert.equal(record.size, 420);
        });

        it("reads the machine's dpkg status file and finds dpkg", function () {
            const path = "/var/lib/dpkg/status";
            if (!existsSync(path)) {
                this.skip();
            }
            const stanzas = parseStanzas(readFileSync(path, "utf8"));
            const dpkg = stanzas.find((s) => s.get("Package") === "dpkg");
            assert.ok(dpkg, "dpkg is in the status file");
            assert.match(dpkg.get("Status") ?? "", /installed/);
            assert.match(dpkg.get("Version") ?? "", /^\d/);
            assert.ok(stanzas.length > 10);
        });
    });

    describe("eachStanza", () => {
        it("yields each stanza before reading the next, then fails on a malformed line where parseStanzas does", () => {
            const text = "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n\nnot a field\n";
            const seen: string[] = [];
            assert.throws(() => {
                for (const stanza of eachStanza(text)) {
                    seen.push(stanza.get("Package") ?? "?");
                }
            }, /line 7/);
            assert.deepEqual(seen, ["a", "b"]);
            assert.throws(() => parseStanzas(text), /line 7/);
            const good = "Package: a\r\nVersion: 1\r\n\r\nPackage: b\nVersion: 2";
            assert.deepEqual(
                [...eachStanza(good)].map((s) => [s.get("Package"), s.get("Version")]),
                parseStanzas(good).map((s) => [s.get("Package"), s.get("Version")]),
            );
        });
    });

    describe("parseStanzasFrom", () => {
        it("yields the same stanzas as parseStanzas, from lines with or without terminators", async () => {
            const text = "# c\nPackage: a\n# c\nDescription: x\n y\n# c\n\n\nPackage: b\r\nVersion: 2";
            const fromLines = await collect(parseStanzasFrom(text.split("\n")));
            const withTerminators = await collect(parseStanzasFrom(text.split(/(?<=\n)/)));
            for (const got of [fromLines, withTerminators]) {
                assert.deepEqual(
                    got.map((s) => [s.order, s.raw, s.get("Description") ?? null]),
                    parseStanzas(text).map((s) => [s.order, s.raw, s.get("Description") ?? null]),
                );
            }
        });

        it("reads an async source chunked at arbitrary places through splitLines", async () => {
            const text = "Package: é\r\nDescription: ü\r\n ß\r\n\r\nPackage: b\r\n";
            const bytes = Buffer.from(text, "utf8");
            async function* chunks() {
                // One byte at a time splits every multi-byte character.
                for (const byte of bytes) {
                    yield Uint8Array.of(byte);
                }
            }
            const stanzas = await collect(parseStanzasFrom(splitLines(chunks())));
            assert.deepEqual(
                stanzas.map((s) => s.get("Package")),
                ["é", "b"],
            );
            assert.equal(stanzas[0].get("Description"), "ü\nß");
        });

        it("holds one stanza at a time: memory stays flat over 200,000 stanzas", async function () {
            this.timeout(120_000);
            function* lines() {
                for (let i = 0; i < 200_000; i++) {
                    yield `Package: p${i}`;
                    yield `Version: ${i}`;
                    yield `Description: ${"x".repeat(200)}`;
                    yield "";
                }
            }
            // A real collection before each measurement, so garbage not yet collected does not count.
            setFlagsFromString("--expose-gc");
            const gc = runInNewContext("gc") as () => void;
            let count = 0;
            let baseline = 0;
            let peak = 0;
            for await (const s of parseStanzasFrom(lines())) {
                count++;
                if (count === 10_000) {
                    gc();
                    baseline = process.memoryUsage().heapUsed;
                }
                if (count % 50_000 === 0) {
                    gc();
                    peak = Math.max(peak, process.memoryUsage().heapUsed);
                }
                assert.equal(s.get("Version"), String(count - 1));
            }
            assert.equal(count, 200_000);
            // 190,000 retained stanzas would take well over 50 MB; allow generous slack for GC timing.
            assert.ok(peak - baseline < 40 * 1024 * 1024, `heap grew by ${peak - baseline} bytes`);
        });
    });

    describe("toPackageRecord", () => {
        it("extracts the fields the engine needs", () => {
            const record = toPackageRecord(pkg({ SHA256: SHA.toUpperCase() }), "main");
            assert.equal(record.name, "nginx");
            assert.equal(record.version, "1.22.1-9");
            assert.equal(record.architecture, "amd64");
            assert.equal(record.component, "main");
            assert.equal(record.filename, "pool/main/n/nginx/nginx_1.22.1-9_amd64.deb");
            assert.equal(record.size, 1234);
            assert.equal(record.sha256, SHA);
            assert.equal(record.source, "nginx");
            assert.equal(record.sourceVersion, "1.22.1-9");
            assert.equal(record.stanza.get("Package"), "nginx");
        });

        it("reads Source with and without a version", () => {
            const withVersion = toPackageRecord(
                pkg({ Version: "1.22.1-9+b1", Source: "nginx-src (1.22.1-9)" }),
                "main",
            );
            assert.equal(withVersion.source, "nginx-src");
            assert.equal(withVersion.sourceVersion, "1.22.1-9");
            const withoutVersion = toPackageRecord(pkg({ Source: "nginx-src" }), "main");
            assert.equal(withoutVersion.source, "nginx-src");
            assert.equal(withoutVersion.sourceVersion, "1.22.1-9");
            assert.deepEqual(parseSourceField("glibc (2.36-9+deb12u4)"), { name: "glibc", version: "2.36-9+deb12u4" });
            assert.deepEqual(parseSourceField("glibc"), { name: "glibc" });
            assert.equal(parseSourceField("glibc (2.36"), undefined);
            assert.equal(parseSourceField("glibc (1:)"), undefined);
            assert.throws(() => toPackageRecord(pkg({ Source: "a b" }), "main"), parseErrorMatching(/"nginx".*Source/));
        });

        it("names the package and the field when a required field is missing or malformed", () => {
            const cases: [Record<string, string | undefined>, RegExp][] = [
                [{ Package: undefined }, /field Package is missing/],
                [{ Package: "-bad" }, /field Package/],
                [{ Version: undefined }, /"nginx": field Version is missing/],
                [{ Version: "1:" }, /"nginx": field Version .*nothing after colon/],
                [{ Architecture: undefined }, /"nginx": field Architecture is missing/],
                [{ Architecture: "amd 64" }, /"nginx": field Architecture/],
                [{ Filename: undefined }, /"nginx": field Filename is missing/],
                [{ Size: undefined }, /"nginx": field Size is missing/],
                [{ Size: "12k" }, /"nginx": field Size is not a byte count/],
                [{ Size: "-1" }, /"nginx": field Size/],
                [{ Size: "99999999999999999999" }, /"nginx": field Size/],
                [{ SHA256: undefined }, /"nginx": field SHA256 is missing/],
                [{ SHA256: "abc" }, /"nginx": field SHA256 is not 64 hexadecimal digits/],
                [{ SHA256: `${SHA.slice(1)}g` }, /"nginx": field SHA256/],
            ];
            for (const [overrides, pattern] of cases) {
                assert.throws(
                    () => toPackageRecord(pkg(overrides), "main"),
                    parseErrorMatching(pattern),
                    pattern.source,
                );
            }
        });

        it("refuses a Filename that could escape the pool", () => {
            const hostile = [
                "../../etc/passwd",
                "pool/../../../etc/cron.d/x",
                "pool/main/..",
                "/etc/passwd",
                "pool\\main\\x.deb",
                "pool/main/x\u0000.deb",
                "pool//x.deb",
                "./pool/x.deb",
            ];
            for (const filename of hostile) {
                assert.throws(
                    () => toPackageRecord(pkg({ Filename: filename }), "main"),
                    parseErrorMatching(/package "nginx": field Filename/),
                    filename,
                );
            }
            const multiline = parseStanzas(
                stanzaText({ Package: "nginx", Version: "1", Architecture: "all", Size: "1", SHA256: SHA }) +
                    "Filename: pool/a.deb\n ../../x\n",
            )[0];
            assert.throws(() => toPackageRecord(multiline, "main"), parseErrorMatching(/"nginx": field Filename/));
            assert.equal(unsafePathReason("pool/main/a/a..b/a..b_1_all.deb"), undefined);
            assert.equal(unsafePathReason("pool/main/a/a/a_1%3a2_all.deb"), undefined);
        });
    });

    describe("formatStanza", () => {
        it("writes deb822 with continued lines and ' .' for empty lines", () => {
            const text = formatStanza([
                ["Package", "hello"],
                ["Description", "short\nlong line\n\n verbatim\n   "],
                ["SHA256", "\nabc 1 main/x"],
                ["Empty", ""],
            ]);
            assert.equal(
                text,
                "Package: hello\nDescription: short\n long line\n .\n  verbatim\n .\nSHA256:\n abc 1 main/x\nEmpty:\n",
            );
        });

        it("round-trips through parseStanzas", () => {
            const fields: [string, string][] = [
                ["Package", "hello"],
                ["Description", "short\nlong line\n\n verbatim"],
                ["SHA256", "\nabc 1 main/x\ndef 2 main/y"],
            ];
            const [stanza] = parseStanzas(formatStanza(fields));
            assert.deepEqual(
                stanza.order.map((name) => [name, stanza.get(name)]),
                fields,
            );
        });

        it("refuses what cannot be written", () => {
            const invalid = (err: unknown) => hasCode(err, "ERR_INVALID_ARGUMENT");
            assert.throws(() => formatStanza([["Bad Name", "x"]]), invalid);
            assert.throws(() => formatStanza([["Bad:Name", "x"]]), invalid);
            assert.throws(() => formatStanza([["#Comment", "x"]]), invalid);
            assert.throws(() => formatStanza([["", "x"]]), invalid);
            assert.throws(() => formatStanza([["Name", "a\r\nb"]]), invalid);
        });
    });
});
