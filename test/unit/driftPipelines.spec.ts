import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { packageRoot } from "../harness/program";
import type { Loose } from "./components/mocks";

/** Every shell line of a GitHub Actions workflow or a GitLab CI file. */
function commands(doc: Record<string, Loose>): string[] {
    const lines: string[] = [];
    for (const job of Object.values<Loose>(doc.jobs ?? doc)) {
        for (const step of job?.steps ?? []) {
            if (typeof step.run === "string") {
                lines.push(step.run);
            }
        }
        for (const line of job?.script ?? []) {
            lines.push(String(line));
        }
    }
    return lines;
}

describe("examples/pipelines and the drift command's packaging", () => {
    const dir = path.join(packageRoot, "examples", "pipelines");

    for (const file of ["github-actions-drift.yml", "gitlab-ci-drift.yml"]) {
        it(`${file} runs npx pulumi-airgap drift for a stack`, () => {
            const doc = parse(fs.readFileSync(path.join(dir, file), "utf8"));
            const run = commands(doc).filter((c) => c.includes("pulumi-airgap drift"));
            assert.equal(run.length, 1, JSON.stringify(commands(doc)));
            assert.match(run[0], /npx pulumi-airgap drift --stack \S+/);
        });
    }

    it("the GitHub workflow keeps the command's exit code through tee", () => {
        const doc = parse(fs.readFileSync(path.join(dir, "github-actions-drift.yml"), "utf8"));
        const step = doc.jobs.drift.steps.find((s: Loose) => String(s.run).includes("pulumi-airgap drift"));
        assert.match(step.shell, /pipefail/);
    });

    it("package.json ships the command: bin entry, built file with a shebang, inside files", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8"));
        const bin = pkg.bin["pulumi-airgap"];
        assert.equal(bin, "lib/tools/drift/main.js");
        assert.ok(
            pkg.files.some((f: string) => bin.startsWith(`${f.replace(/\/$/, "")}/`)),
            JSON.stringify(pkg.files),
        );
        assert.match(fs.readFileSync(path.join(packageRoot, bin), "utf8"), /^#!\/usr\/bin\/env node\n/);
        const build = JSON.parse(fs.readFileSync(path.join(packageRoot, "tsconfig.build.json"), "utf8"));
        assert.ok(build.include.includes("tools/**/*.ts"));
    });
});
