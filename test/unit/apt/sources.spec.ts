import assert from "node:assert/strict";
import { parseStanzas, toPackageRecord } from "../../../provider/apt/control";
import { optionalIndexesInputs, optionalIndexesProblems } from "../../../provider/apt/optional_indexes";
import { publishedSourceStanza, selectSources, sourceStanzaFiles, toSourceRecord } from "../../../provider/apt/sources";
import { hasCode } from "../../../provider/errors";

const A = "a".repeat(64);
const B = "b".repeat(64);

const hello = `Package: hello
Binary: hello, libhello1
Version: 1.0-1
Maintainer: t <t@example.invalid>
Architecture: any
Format: 3.0 (quilt)
Directory: pool/main/h/hello
Files:
 0123456789abcdef0123456789abcdef 10 hello_1.0-1.dsc
Checksums-Sha256:
 ${A} 10 hello_1.0-1.dsc
 ${B} 20 hello_1.0.orig.tar.gz
Section: misc
`;

const source = (text: string) => toSourceRecord(parseStanzas(text)[0]!, "main");
const binary = (fields: string) =>
    toPackageRecord(
        parseStanzas(`${fields}\nArchitecture: amd64\nFilename: pool/main/x.deb\nSize: 1\nSHA256: ${A}\n`)[0]!,
        "main",
    );

describe("source packages (withSources)", () => {
    it("reads a Sources stanza: name, version, directory and the signed SHA256 of each file", () => {
        const r = source(hello);
        assert.equal(r.name, "hello");
        assert.equal(r.version, "1.0-1");
        assert.equal(r.directory, "pool/main/h/hello");
        assert.deepEqual(r.files, [
            { sha256: A, size: 10, name: "hello_1.0-1.dsc" },
            { sha256: B, size: 20, name: "hello_1.0.orig.tar.gz" },
        ]);
    });

    it("refuses a Directory outside the archive, a file name with a slash, and a stanza without SHA256", () => {
        for (const [text, field] of [
            [hello.replace("pool/main/h/hello", "../../etc"), "Directory"],
            [hello.replace("hello_1.0.orig.tar.gz", "../x.tar.gz"), "Checksums-Sha256"],
            [hello.replace(/Checksums-Sha256:\n( .*\n)+/, ""), "Checksums-Sha256"],
        ] as const) {
            assert.throws(
                () => source(text),
                (err: Error) => hasCode(err, "ERR_PARSE") && err.message.includes(`field ${field}`),
            );
        }
    });

    it("selects by Source:, at the version Source: names (a binNMU), else the binary's own name and version", () => {
        const other = source(hello.replace("Version: 1.0-1", "Version: 0.9-1"));
        const sources = [source(hello), other];
        const picked = selectSources(sources, [
            binary("Package: libhello1\nSource: hello (1.0-1)\nVersion: 1.0-1+b1"),
            binary("Package: hello\nVersion: 1.0-1"),
        ]);
        assert.deepEqual(
            picked.map((s) => `${s.name} ${s.version}`),
            ["hello 1.0-1"],
        );
    });

    it("a binary whose source is not in the Sources index names withSources and the package", () => {
        assert.throws(
            () => selectSources([source(hello)], [binary("Package: tool\nSource: toolsrc\nVersion: 2.0-1")]),
            (err: Error & { argument?: string }) =>
                hasCode(err, "ERR_NOT_FOUND") &&
                err.argument === "withSources" &&
                /tool 2\.0-1 \(source toolsrc 2\.0-1, component main\)/.test(err.message),
        );
    });

    it("publishes the stanza with our Directory and only the verified SHA256; garbage collection reads it back", () => {
        const text = publishedSourceStanza(source(hello.replace("pool/main/h/hello", "upstream/odd/place")));
        assert.match(text, /^Directory: pool\/main\/h\/hello$/m);
        assert.doesNotMatch(text, /^Files:/m);
        assert.match(text, /^Binary: hello, libhello1$/m);
        assert.deepEqual(sourceStanzaFiles(parseStanzas(text)[0]!), [
            ["pool/main/h/hello/hello_1.0-1.dsc", A],
            ["pool/main/h/hello/hello_1.0.orig.tar.gz", B],
        ]);
    });
});

describe("optional index inputs", () => {
    it("name the argument of a wrong value", () => {
        assert.deepEqual(
            optionalIndexesProblems({ withSources: "yes", contents: 1, udebs: "busybox-udeb" }).map((p) => p.argument),
            ["withSources", "contents", "udebs"],
        );
        assert.deepEqual(optionalIndexesProblems({ withSources: true, contents: false, udebs: ["a"] }), []);
    });

    it("leave the sync digest of a mirror without them as it was", () => {
        assert.equal(optionalIndexesInputs({}), undefined);
        assert.equal(optionalIndexesInputs({ withSources: false, contents: false, udebs: [] }), undefined);
        assert.deepEqual(optionalIndexesInputs({ contents: true, udebs: ["x"] }), { contents: true, udebs: ["x"] });
    });
});
