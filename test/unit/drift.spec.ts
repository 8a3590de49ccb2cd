import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { extractJson, findPulumi, HELP, parseDriftArgs, wantsHelp } from "../../tools/drift/main";
import { formatReport, type PreviewJson, summarizePreview } from "../../tools/drift/summary";
import { packageRoot } from "../harness/program";

/** JSON the real CLI printed for `preview --refresh --expect-no-changes --json` (test/e2e/drift.spec.ts records it). */
const recorded = (name: string): PreviewJson =>
    JSON.parse(fs.readFileSync(path.join(packageRoot, "test", "unit", "drift", `${name}.json`), "utf8"));

describe("drift summary of recorded previews", () => {
    it("a clean stack is clean", () => {
        const report = summarizePreview(recorded("clean"));
        assert.deepEqual(report, { status: "clean", resources: [], errors: [] });
        assert.equal(formatReport(report, "site"), "no drift (stack site)\n");
    });

    it("a host file edited is the site drifting, naming the file", () => {
        const report = summarizePreview(recorded("host-file-edited"));
        assert.equal(report.status, "drift");
        assert.equal(report.resources.length, 1);
        const [r] = report.resources;
        assert.equal(r.type, "HostMirrorConfig");
        assert.equal(r.name, "node");
        assert.deepEqual(r.causes, ["site"]);
        assert.equal(r.findings.length, 1);
        assert.match(
            r.findings[0],
            /^host file etc\/containers\/registries\.conf\.d\/node\.conf edited \(sha256 [0-9a-f]{12}… → [0-9a-f]{12}…\)$/,
        );
    });

    it("a package that gained a version upstream is upstream moving, with both versions", () => {
        const report = summarizePreview(recorded("upstream-version"));
        assert.equal(report.status, "drift");
        assert.deepEqual(
            report.resources.map((r) => [r.type, r.name, r.op, r.causes]),
            [["AptMirror", "debian", "update", ["upstream"]]],
        );
        const [r] = report.resources;
        assert.equal(r.findings[0], "package app/amd64 1.0-1 → 1.1-1");
        assert.match(r.findings[1], /^upstream Release date \S+ → \S+$/);
        assert.equal(r.findings.length, 2);
        assert.match(
            formatReport(report),
            /^AptMirror "debian": upstream moved \(update\)\n {2}package app\/amd64 1\.0-1 → 1\.1-1$/m,
        );
    });

    it("a tag that moved is upstream moving, with both digests", () => {
        const report = summarizePreview(recorded("tag-moved"));
        assert.equal(report.status, "drift");
        assert.equal(report.resources.length, 1);
        const [r] = report.resources;
        assert.equal(r.type, "ImageMirror");
        assert.deepEqual(r.causes, ["upstream"]);
        assert.match(r.findings[0], /^image 127\.0\.0\.1:\d+\/src\/app:v1 sha256:[0-9a-f]{64} → sha256:[0-9a-f]{64}$/);
    });

    it("a mirror file altered is the site drifting, naming the file", () => {
        const report = summarizePreview(recorded("mirror-file-altered"));
        assert.equal(report.status, "drift");
        assert.deepEqual(
            report.resources.map((r) => [r.type, r.name, r.causes]),
            [["AptMirror", "debian", ["site"]]],
        );
        assert.ok(
            report.resources[0].findings.some((f) =>
                f.startsWith("altered-pool-file: pool/main/a/app/app_1.1-1_amd64.deb: "),
            ),
            report.resources[0].findings.join("\n"),
        );
    });

    it("upstream unreachable is an error with the reason, not drift", () => {
        const report = summarizePreview(recorded("upstream-unreachable"));
        assert.equal(report.status, "error");
        assert.ok(
            report.errors.some((e) =>
                /^AptMirror "debian": source: GET http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm\/InRelease: .*ECONNREFUSED/.test(
                    e,
                ),
            ),
            report.errors.join("\n"),
        );
        assert.match(formatReport(report), /^error: the preview failed; this is not drift$/m);
    });
});

describe("drift summary rules", () => {
    const urn = (type: string, name: string) => `urn:pulumi:site::p::${type}::${name}`;
    const apt = urn("pulumi-nodejs:dynamic/airgap:AptMirror", "debian");

    it("the mirror's own drift report is the site drifting, listed as the provider words it", () => {
        const outputs = { drift: [], packages: { "a/amd64": "1" } };
        const report = summarizePreview({
            steps: [
                { op: "refresh", urn: apt, oldState: { outputs }, newState: { outputs } },
                {
                    op: "update",
                    urn: apt,
                    oldState: {
                        inputs: { packages: { "a/amd64": "1" } },
                        outputs: { ...outputs, drift: ["pool/main/a/a_1_amd64.deb: altered"] },
                    },
                    newState: { inputs: { packages: { "a/amd64": "1" } } },
                },
            ],
        });
        assert.deepEqual(report.resources[0].causes, ["site"]);
        assert.deepEqual(report.resources[0].findings, ["pool/main/a/a_1_amd64.deb: altered"]);
    });

    it("packages added and removed, and other inputs as the program's changes; infrastructure ignored", () => {
        const report = summarizePreview({
            steps: [
                { op: "same", urn: "urn:pulumi:site::p::pulumi:pulumi:Stack::p-site" },
                {
                    op: "update",
                    urn: apt,
                    oldState: { inputs: { packages: { "old/all": "2" }, concurrency: 4, __provider: "x" } },
                    newState: { inputs: { packages: { "new/amd64": "1" }, concurrency: 8, __provider: "y" } },
                },
                {
                    op: "create",
                    urn: urn("airgap:components:DriveTrainMirrors$docker:index/container:Container", "dt-git"),
                },
            ],
        });
        assert.deepEqual(
            report.resources.map((r) => [r.type, r.name, r.causes, r.findings]),
            [
                [
                    "AptMirror",
                    "debian",
                    ["upstream", "program"],
                    ["package new/amd64 1 added", "package old/all 2 removed", "input concurrency changed"],
                ],
                ["Container", "dt-git", ["program"], ["not created yet"]],
            ],
        );
    });

    it("an AptMirror lock passed as text: each package added, removed or changing version", () => {
        const report = summarizePreview({
            steps: [
                {
                    op: "update",
                    urn: apt,
                    oldState: { inputs: { packages: "app/amd64 1.0-1\nold/all 2\n", __provider: "x" } },
                    newState: { inputs: { packages: "app/amd64 1.1-1\nnew/amd64 1\n", __provider: "x" } },
                },
            ],
        });
        assert.deepEqual(report.resources[0].causes, ["upstream"]);
        assert.deepEqual(report.resources[0].findings, [
            "package app/amd64 1.0-1 → 1.1-1",
            "package new/amd64 1 added",
            "package old/all 2 removed",
        ]);
    });

    it("an error diagnostic wins over changes", () => {
        const report = summarizePreview({
            steps: [{ op: "create", urn: apt }],
            diagnostics: [
                { severity: "warning", message: "w" },
                { severity: "error", message: 'ImageMirror "r": images: connect ECONNREFUSED 127.0.0.1:1\n' },
            ],
        });
        assert.equal(report.status, "error");
        assert.deepEqual(report.errors, ['ImageMirror "r": images: connect ECONNREFUSED 127.0.0.1:1']);
    });
});

describe("drift command line", () => {
    it("parses --stack and --cwd, and refuses anything else naming it", () => {
        assert.deepEqual(parseDriftArgs(["drift"], "/w"), { cwd: "/w" });
        assert.deepEqual(parseDriftArgs(["drift", "--stack", "site", "--cwd", "prog"], "/w"), {
            cwd: "/w/prog",
            stack: "site",
        });
        assert.deepEqual(parseDriftArgs(["drift", "--stack=a", "-C", "/x"], "/w"), { cwd: "/x", stack: "a" });
        assert.throws(() => parseDriftArgs(["drift", "--stack"], "/w"), /--stack needs a value/);
        assert.throws(() => parseDriftArgs(["drift", "--refresh"], "/w"), /unknown option "--refresh"/);
        assert.throws(() => parseDriftArgs(["up"], "/w"), /unknown command "up"\nusage: pulumi-airgap drift/);
        assert.ok(wantsHelp(["--help"]) && wantsHelp(["drift", "-h"]) && wantsHelp(["help"]));
        assert.ok(!wantsHelp(["drift", "--stack", "help"]) && !wantsHelp(["drift"]));
        assert.match(HELP, /^usage: pulumi-airgap drift/);
        assert.match(HELP, /0 clean, 1 drift, 2 error/);
    });

    it("finds pulumi on PATH first, else in the project's .tools/bin", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-drift-find-"));
        try {
            const project = path.join(dir, "repo");
            fs.mkdirSync(path.join(project, ".tools", "bin"), { recursive: true });
            fs.mkdirSync(path.join(project, "stacks", "site"), { recursive: true });
            fs.mkdirSync(path.join(dir, "path"));
            const tools = path.join(project, ".tools", "bin", "pulumi");
            fs.writeFileSync(tools, "#!/bin/sh\n", { mode: 0o755 });
            assert.equal(findPulumi(path.join(project, "stacks", "site"), { PATH: path.join(dir, "path") }), tools);
            const onPath = path.join(dir, "path", "pulumi");
            fs.writeFileSync(onPath, "#!/bin/sh\n", { mode: 0o755 });
            assert.equal(findPulumi(path.join(project, "stacks", "site"), { PATH: path.join(dir, "path") }), onPath);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("takes the JSON document after lines the CLI prints before it", () => {
        assert.deepEqual(extractJson('warning: x\n{"steps": []}\n'), { steps: [] });
        assert.equal(extractJson("error: no stack\n"), undefined);
    });
});
