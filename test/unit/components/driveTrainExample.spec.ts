import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { packageRoot } from "../../harness/program";

const example = path.join(packageRoot, "examples", "drivetrain");

describe("examples/drivetrain", function () {
    this.timeout(30_000);

    it("is a complete program directory: Pulumi.yaml naming index.ts, package.json with its providers, README", () => {
        const project = parse(fs.readFileSync(path.join(example, "Pulumi.yaml"), "utf8"));
        assert.equal(project.runtime, "nodejs");
        assert.equal(project.main, "index.ts");
        assert.ok(fs.existsSync(path.join(example, project.main)));
        const pkg = JSON.parse(fs.readFileSync(path.join(example, "package.json"), "utf8"));
        const own = JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8"));
        for (const dep of ["@pulumi/pulumi", "@pulumi/docker"]) {
            assert.equal(pkg.dependencies[dep], own.dependencies[dep], dep);
        }
        assert.equal(pkg.dependencies["pulumi-airgap"], "file:../..");
        const readme = fs.readFileSync(path.join(example, "README.md"), "utf8");
        assert.match(readme, /pulumi up/);
        assert.match(readme, /pulumi-airgap drift/);
    });
});
