import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../harness/program";
import { run } from "../harness/servers/process";
import { cleanupAll, makeTempDir } from "../harness/tmp";

/**
 * The component examples type-check as a deployment repository compiles them: `tsc --noEmit`
 * on each example's index.ts, strict, with `pulumi-airgap` resolved as an installed package (its
 * package.json `types`, the declarations the build writes to lib/), not through this
 * repository's source paths. A program that misuses the API fails, so the check can fail.
 */

const EXAMPLES = ["mini-mirror", "microshift-airgap", "drivetrain"];
const tsc = path.join(packageRoot, "node_modules", "typescript", "bin", "tsc");

async function typecheck(entry: string): Promise<{ code: number | null; output: string }> {
    const dir = await makeTempDir("example-tsc");
    const config = path.join(dir, "tsconfig.json");
    fs.writeFileSync(
        config,
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
            },
            files: [entry],
        }),
    );
    const r = await run("node", [tsc, "-p", config], { check: false, timeoutMs: 300_000 });
    return { code: r.code, output: r.stdout + r.stderr };
}

describe("examples of the components type-check against the package", function () {
    this.timeout(600_000);

    before(() => {
        // The package as installed: node_modules/pulumi-airgap → this package, typed by lib/sdk.
        const types = path.join(packageRoot, "node_modules", "pulumi-airgap", "lib", "sdk", "index.d.ts");
        assert.ok(fs.existsSync(types), `${types} is missing: build first (npx tsc -p tsconfig.json)`);
        const d = fs.readFileSync(types, "utf8");
        assert.match(d, /components\/miniMirror/);
        assert.match(d, /components\/microshiftAirgap/);
        assert.match(d, /components\/driveTrain/);
    });

    after(cleanupAll);

    for (const name of EXAMPLES) {
        it(`examples/${name}: Pulumi.yaml, package.json, README and index.ts that compiles`, async () => {
            const dir = path.join(packageRoot, "examples", name);
            for (const f of ["Pulumi.yaml", "package.json", "README.md", "index.ts"]) {
                assert.ok(fs.existsSync(path.join(dir, f)), `${name}/${f} is missing`);
            }
            assert.match(
                fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"),
                new RegExp(`^name: ${name}(-[a-z]+)?$`, "m"),
            );
            const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
            assert.ok(pkg.dependencies["pulumi-airgap"], "package.json does not depend on pulumi-airgap");
            const r = await typecheck(path.join(dir, "index.ts"));
            assert.equal(r.code, 0, r.output);
        });
    }

    it("a program that misuses the component does not compile (the check can fail)", async () => {
        const dir = await makeTempDir("example-bad");
        // A deployment repository of its own, with this package's node_modules (pulumi-airgap in it).
        fs.symlinkSync(path.join(packageRoot, "node_modules"), path.join(dir, "node_modules"), "dir");
        const entry = path.join(dir, "index.ts");
        fs.writeFileSync(
            entry,
            'import { MicroShiftAirgap } from "pulumi-airgap";\nnew MicroShiftAirgap("m", { mode: "offline", releaseFile: 1 });\n',
        );
        const r = await typecheck(entry);
        assert.notEqual(r.code, 0);
        assert.match(r.output, /"offline"/);
    });
});
