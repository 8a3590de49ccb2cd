import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { packageRoot } from "../../harness/program";
import { run } from "../../harness/servers/process";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

const example = path.join(packageRoot, "examples", "drivetrain");

describe("examples/drivetrain", function () {
    this.timeout(180_000);

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

    it("type-checks against the package's types", async () => {
        const dir = await makeTempDir("drivetrain-example-tsc");
        try {
            const tsconfig = path.join(dir, "tsconfig.json");
            fs.writeFileSync(
                tsconfig,
                JSON.stringify({
                    compilerOptions: {
                        target: "ES2022",
                        module: "commonjs",
                        moduleResolution: "node10",
                        strict: true,
                        noEmit: true,
                        skipLibCheck: true,
                        esModuleInterop: true,
                        types: ["node"],
                        typeRoots: [path.join(packageRoot, "node_modules", "@types")],
                        baseUrl: packageRoot,
                        paths: { "pulumi-airgap": ["./sdk/index.ts"], "*": ["./node_modules/*"] },
                    },
                    files: [path.join(example, "index.ts")],
                }),
            );
            const tsc = path.join(packageRoot, "node_modules", "typescript", "bin", "tsc");
            const r = await run(process.execPath, [tsc, "-p", tsconfig], { check: false, timeoutMs: 170_000 });
            assert.equal(r.code, 0, r.stdout + r.stderr);
            // The check can fail: the same compiler refuses a wrong argument.
            const bad = path.join(dir, "bad.ts");
            fs.writeFileSync(
                bad,
                `import { DriveTrainMirrors } from "pulumi-airgap";\nnew DriveTrainMirrors("x", { address: 1 });\n`,
            );
            const conf = JSON.parse(fs.readFileSync(tsconfig, "utf8"));
            conf.files = [bad];
            fs.writeFileSync(tsconfig, JSON.stringify(conf));
            const refused = await run(process.execPath, [tsc, "-p", tsconfig], { check: false, timeoutMs: 170_000 });
            assert.notEqual(refused.code, 0);
            assert.match(refused.stdout, /bad\.ts\(2,\d+\): error TS2322/);
        } finally {
            await removeTempDir(dir);
        }
    });
});
