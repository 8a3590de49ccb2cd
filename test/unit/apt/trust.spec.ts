import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AptMirrorSpec } from "../../../provider/apt/mirror";
import { operations as apt } from "../../../provider/apt/operations";
import { normalizeFingerprints, renewalDue, validForMs } from "../../../provider/apt/trust";
import { unknownValue } from "../../../provider/dynamic/contract";

/**
 * AptMirror's check and diff of the arguments about trust: `allowDowngrade` against the lock's
 * upstream Release date, `source.keyFingerprints`, the schemes of `source.keyUrl`, and
 * `publish.validFor`.
 */

const FPR = "A1B2 C3D4 E5F6 0718 293A  4B5C 6D7E 8F90 A1B2 C3D4";

describe("AptMirror check and diff: replay and key trust", () => {
    let root: string;
    const spec = (over: Partial<AptMirrorSpec> = {}, source: Partial<AptMirrorSpec["source"]> = {}): AptMirrorSpec => ({
        source: {
            url: "http://deb.example/debian",
            distribution: "bookworm",
            components: ["main"],
            architectures: ["amd64"],
            key: "-----BEGIN PGP PUBLIC KEY BLOCK-----",
            ...source,
        },
        packages: { "app/amd64": "1.0-1" },
        publish: { root, prefix: "debian" },
        allowUnsigned: true,
        ...over,
    });
    const check = (olds: object, news: AptMirrorSpec) => apt.check(olds as never, news);
    const failures = async (olds: object, news: AptMirrorSpec) =>
        (await check(olds, news)).failures.map((f) => `${f.property}: ${f.reason}`);

    before(() => {
        root = mkdtempSync(join(tmpdir(), "trust-unit-"));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    describe("allowDowngrade", () => {
        const june = "2024-06-01T12:00:00.000Z";
        const may = "2024-05-01T12:00:00.000Z";

        it("an upstream Release older than the last one is refused, naming the argument, both dates and the suite", async () => {
            const found = await failures(spec({ upstreamDate: june }), spec({ upstreamDate: may }));
            assert.equal(found.length, 1, found.join("\n"));
            assert.match(found[0]!, /^allowDowngrade: the upstream Release of "bookworm" resolved now is dated/);
            assert.ok(found[0]!.includes(may) && found[0]!.includes(june), found[0]);
            assert.match(found[0]!, /check source, or set allowDowngrade: true/);
        });

        it("the same or a newer date passes; allowDowngrade: true lets an older one through", async () => {
            assert.deepEqual(await failures(spec({ upstreamDate: may }), spec({ upstreamDate: may })), []);
            assert.deepEqual(await failures(spec({ upstreamDate: may }), spec({ upstreamDate: june })), []);
            assert.deepEqual(
                await failures(spec({ upstreamDate: june }), spec({ upstreamDate: may, allowDowngrade: true })),
                [],
            );
        });

        it("a first create, an older state without a date, or a Release without Date: nothing to compare", async () => {
            assert.deepEqual(await failures({}, spec({ upstreamDate: may })), []);
            assert.deepEqual(await failures(spec(), spec({ upstreamDate: may })), []);
            assert.deepEqual(await failures(spec({ upstreamDate: june }), spec()), []);
        });

        it("a date unknown during preview is left to the next run", async () => {
            const news = { ...spec(), upstreamDate: unknownValue };
            assert.deepEqual(await failures(spec({ upstreamDate: june }), news), []);
        });

        it("neither the lock's date nor allowDowngrade is a change by itself", async () => {
            const olds = { ...spec({ upstreamDate: may }), drift: [] };
            for (const news of [spec({ upstreamDate: june }), spec({ upstreamDate: may, allowDowngrade: true })]) {
                assert.deepEqual(await apt.diff("id", olds as never, news), { changes: false, replaces: [] });
            }
        });
    });

    describe("source.keyFingerprints and source.keyUrl", () => {
        it("fingerprints with spaces, in any case, of 40 or 64 digits are accepted", async () => {
            assert.deepEqual(await failures({}, spec({}, { keyFingerprints: [FPR, "ab".repeat(32)] })), []);
            assert.deepEqual(normalizeFingerprints([FPR.toLowerCase()]), [FPR.replace(/\s/g, "")]);
        });

        it("a malformed fingerprint is a check error naming the argument", async () => {
            for (const bad of ["A1B2C3", `${FPR.replace(/\s/g, "")}00`, "G".repeat(40)]) {
                const found = await failures({}, spec({}, { keyFingerprints: [FPR, bad] }));
                assert.deepEqual(found.length, 1, found.join("\n"));
                assert.match(found[0]!, /^source\.keyFingerprints\[1\]: ".*" is not a key fingerprint/);
            }
            const empty = await failures({}, spec({}, { keyFingerprints: [] }));
            assert.match(empty.join("\n"), /^source\.keyFingerprints: must be a non-empty list/);
        });

        it("keyUrl: https:// and file:// pass; http:// only with keyFingerprints; other schemes are refused", async () => {
            assert.deepEqual(await failures({}, spec({}, { keyUrl: "https://deb.example/key.asc" })), []);
            assert.deepEqual(await failures({}, spec({}, { keyUrl: "file:///etc/apt/key.asc" })), []);
            assert.deepEqual(
                await failures({}, spec({}, { keyUrl: "http://deb.example/key.asc", keyFingerprints: [FPR] })),
                [],
            );
            const clear = await failures({}, spec({}, { keyUrl: "http://deb.example/key.asc" }));
            assert.match(clear.join("\n"), /^source\.keyUrl: .* is fetched in clear: use https:\/\/ or file:\/\//);
            const ftp = await failures({}, spec({}, { keyUrl: "ftp://deb.example/key.asc", keyFingerprints: [FPR] }));
            assert.match(ftp.join("\n"), /^source\.keyUrl: .*only https:\/\/ and file:\/\/ URLs are accepted/);
        });

        it("new fingerprints are an update in place", async () => {
            const olds = { ...spec(), drift: [] };
            assert.deepEqual(await apt.diff("id", olds as never, spec({}, { keyFingerprints: [FPR] })), {
                changes: true,
                replaces: [],
            });
        });
    });

    describe("publish.validFor", () => {
        it("durations with a unit or seconds are accepted; anything else names publish.validFor", async () => {
            assert.equal(validForMs("7d"), 7 * 86_400_000);
            assert.equal(validForMs("12h"), 12 * 3_600_000);
            assert.equal(validForMs(90), 90_000);
            for (const good of ["7d", "30m", 3600]) {
                assert.deepEqual(await failures({}, spec({ publish: { root, prefix: "debian", validFor: good } })), []);
            }
            for (const bad of ["7 days", "-1d", 0, 1.5, "0s"]) {
                const found = await failures({}, spec({ publish: { root, prefix: "debian", validFor: bad } }));
                assert.match(found.join("\n"), /^publish\.validFor: .* must be a duration such as "7d"/, String(bad));
            }
        });

        it("renewal is due when less than half the period is left, or no Valid-Until is known", () => {
            const now = new Date("2024-06-01T00:00:00Z");
            const day = 86_400_000;
            assert.equal(renewalDue("2024-06-05T00:00:00Z", 7 * day, now), false);
            assert.equal(renewalDue("2024-06-04T00:00:00Z", 7 * day, now), true);
            assert.equal(renewalDue(undefined, 7 * day, now), true);
            assert.equal(renewalDue(undefined, undefined, now), false);
        });

        it("another validFor is an update in place", async () => {
            const olds = { ...spec(), drift: [] };
            const news = spec({ publish: { root, prefix: "debian", validFor: "7d" } });
            assert.deepEqual(await apt.diff("id", olds as never, news), { changes: true, replaces: [] });
        });
    });
});
