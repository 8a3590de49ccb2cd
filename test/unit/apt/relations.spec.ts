import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { parseStanzas } from "../../../provider/apt/control";
import { formatRelation, formatRelations, parseRelations } from "../../../provider/apt/relations";
import { hasCode } from "../../../provider/errors";

function parseErrorMatching(pattern: RegExp) {
    return (err: unknown) => hasCode(err, "ERR_PARSE") && pattern.test((err as Error).message);
}

describe("apt/relations", () => {
    describe("parseRelations", () => {
        it("parses versions, qualifiers, alternatives, architectures and drops build profiles", () => {
            const parsed = parseRelations(
                "libc6 (>= 2.34), perl:any, default-mta | mail-transport-agent, foo (<< 2.0~) [amd64 !arm64] <!nocheck>",
            );
            assert.deepEqual(parsed, [
                [{ name: "libc6", op: ">=", version: "2.34" }],
                [{ name: "perl", archQualifier: "any" }],
                [{ name: "default-mta" }, { name: "mail-transport-agent" }],
                [{ name: "foo", op: "<<", version: "2.0~", architectures: ["amd64", "!arm64"] }],
            ]);
        });

        it("reads every operator and maps the obsolete < and > to <= and >=", () => {
            const parsed = parseRelations("a (<< 1), b (<= 1), c (= 1), d (>= 1), e (>> 1), f (< 1), g (> 1)");
            assert.deepEqual(
                parsed.map(([r]) => r.op),
                ["<<", "<=", "=", ">=", ">>", "<=", ">="],
            );
        });

        it("tolerates odd white space, folded lines and empty groups", () => {
            const parsed = parseRelations(
                "  libc6(>=2.34) ,\n libfoo1 ( >= 1:2.0-1 )|\tlibbar ,\r\n baz [ amd64 ] < stage1  cross > <!nocheck>,,",
            );
            assert.deepEqual(parsed, [
                [{ name: "libc6", op: ">=", version: "2.34" }],
                [{ name: "libfoo1", op: ">=", version: "1:2.0-1" }, { name: "libbar" }],
                [{ name: "baz", architectures: ["amd64"] }],
            ]);
            assert.deepEqual(parseRelations(""), []);
            assert.deepEqual(parseRelations(" \n "), []);
        });

        it("accepts real package names and qualifiers", () => {
            const parsed = parseRelations(
                "libstdc++6 (>= 13.1), python3.11:native, g++-12, lib_old.so+x, libfoo:amd64",
            );
            assert.deepEqual(
                parsed.map(([r]) => [r.name, r.archQualifier ?? null]),
                [
                    ["libstdc++6", null],
                    ["python3.11", "native"],
                    ["g++-12", null],
                    ["lib_old.so+x", null],
                    ["libfoo", "amd64"],
                ],
            );
        });

        it("reports malformed input with the offending text", () => {
            const cases: [string, RegExp][] = [
                ["libc6 (>= 2.34", /expected "\)"|at end of field/],
                ["libc6 (2.34)", /relation operator.*"2\.34\)"/],
                ["libc6 (=> 2.34)", /relation operator.*"=> 2\.34\)"/],
                ["libc6 (>=)", /expected a version/],
                ["libc6 (>= 1:)", /nothing after colon/],
                ["libc6 | , foo", /expected a package name at ", foo"/],
                ["libc6 foo", /expected "," or "\|" at "foo"/],
                ["(>= 1)", /expected a package name/],
                ["foo [amd64", /expected "\]" at end of field/],
                ["foo <nocheck", /expected ">" at end of field/],
                ["foo []", /expected an architecture/],
                ["foo <>", /expected a build profile/],
                ["foo:", /architecture qualifier/],
                ["$" + "{shlibs:Depends}", /package name at "\$\{shlibs:Depends\}"/],
            ];
            for (const [field, pattern] of cases) {
                assert.throws(
                    () => parseRelations(field),
                    (err: unknown) =>
                        parseErrorMatching(pattern)(err) && (err as Error).message.includes(JSON.stringify(field)),
                    field,
                );
            }
        });

        it("parses every relation field of the machine's dpkg status file", function () {
            const path = "/var/lib/dpkg/status";
            if (!existsSync(path)) {
                this.skip();
            }
            let count = 0;
            for (const stanza of parseStanzas(readFileSync(path, "utf8"))) {
                for (const field of ["Depends", "Pre-Depends", "Recommends", "Suggests", "Provides", "Breaks"]) {
                    const value = stanza.get(field);
                    if (value !== undefined) {
                        const parsed = parseRelations(value);
                        count += parsed.length;
                        // Canonical form parses to the same tree.
                        assert.deepEqual(parseRelations(formatRelations(parsed)), parsed);
                    }
                }
            }
            assert.ok(count > 0);
        });
    });

    describe("formatRelation", () => {
        it("writes the canonical form", () => {
            assert.equal(formatRelation({ name: "libc6" }), "libc6");
            assert.equal(formatRelation({ name: "perl", archQualifier: "any" }), "perl:any");
            assert.equal(formatRelation({ name: "libc6", op: ">=", version: "2.34" }), "libc6 (>= 2.34)");
            assert.equal(
                formatRelation({ name: "foo", op: "<<", version: "2.0~", architectures: ["amd64", "!arm64"] }),
                "foo (<< 2.0~) [amd64 !arm64]",
            );
        });

        it("round-trips a whole field (build profiles aside)", () => {
            const field = "libc6 (>= 2.34), perl:any, default-mta | mail-transport-agent, foo (<< 2.0~) [amd64 !arm64]";
            assert.equal(formatRelations(parseRelations(field)), field);
            assert.equal(formatRelations(parseRelations("a (> 1) <!nocheck>")), "a (>= 1)");
        });
    });
});
