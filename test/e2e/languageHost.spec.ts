import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createProgramStack, errorDiagnostics, type ProgramStack, pulumiBin } from "../harness/program";

/**
 * The language host the install step put under .tools/bin, started by the real CLI for a
 * JavaScript program in its directory: config and secrets reach the program, outputs come back,
 * a failing program fails the update once, and `about` and `install` work.
 */
const program = `const pulumi = require("@pulumi/pulumi");
const config = new pulumi.Config();
if (config.getBoolean("fail")) {
    // Thrown from a timer, so its stack has no frame in @pulumi/pulumi: the runtime inspects every
    // uncaught error with colours, which on Node 20.20 loops for ~40 s on a frame like
    // node_modules/@pulumi/resource.ts (see README, "Errors while the program runs").
    setTimeout(() => {
        throw new Error("the program failed on purpose");
    }, 10);
}
exports.greeting = \`hello \${config.require("name")}\`;
exports.secretLength = config.requireSecret("token").apply((t) => t.length);
exports.dryRunSeen = pulumi.runtime.isDryRun();
exports.stack = pulumi.getStack();
exports.project = pulumi.getProject();
`;

describe("the Node.js language host under the real CLI", function () {
    this.timeout(300_000);

    let t: ProgramStack;
    let fail = false;

    before(async () => {
        const host = path.join(path.dirname(pulumiBin), "pulumi-language-nodejs");
        assert.ok(fs.existsSync(host), `${host} is missing: the install step did not install a language host`);
        t = await createProgramStack("langhost", {
            source: program,
            language: "javascript",
            config: () => ({
                name: "site",
                token: { secret: "s3cret-token" },
                ...(fail ? { fail: "true" } : {}),
            }),
        });
    });

    after(async () => {
        await t?.dispose();
    });

    it("runs the program with its config and secrets, and the outputs come back", async () => {
        const r = await t.up();
        assert.deepEqual(r.outputs, {
            greeting: "hello site",
            secretLength: 12,
            dryRunSeen: false,
            stack: "test",
            project: "langhost",
        });
        assert.equal(r.changes.create, 1, t.lastOutput());
        await t.preview({ expectNoChanges: true });
    });

    it("a program that throws fails preview and up once, and the outputs stay", async () => {
        fail = true;
        for (const op of [["preview"], ["up", "--yes", "--skip-preview"]]) {
            const r = await t.cli([...op, "--non-interactive"]);
            const out = `${r.stdout}${r.stderr}`;
            assert.notEqual(r.code, 0, out);
            const errors = errorDiagnostics(r).filter((m) => m.includes("the program failed on purpose"));
            assert.equal(errors.length, 1, out);
            assert.ok(r.elapsedMs < 60_000);
        }
        fail = false;
        assert.equal((await t.outputs()).greeting, "hello site");
    });

    it("pulumi about reports the Node.js runtime the host found", async () => {
        const r = await t.cli(["about", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const about = JSON.parse(r.stdout) as {
            runtime?: Record<string, string>;
            plugins?: { name: string; kind?: string }[];
            dependencies?: { name: string; version: string }[];
        };
        assert.equal(about.runtime?.language, "nodejs");
        assert.equal(about.runtime?.executable, fs.realpathSync(process.execPath));
        assert.equal(about.runtime?.version, process.version);
        assert.equal(about.runtime?.packagemanager, "npm");
        assert.deepEqual(
            about.plugins?.filter((p) => p.kind === "language").map((p) => p.name),
            ["nodejs"],
        );
    });

    it("pulumi install installs the program's dependencies through the host", async () => {
        fs.writeFileSync(
            path.join(t.dir, "package.json"),
            JSON.stringify({ name: "langhost-program", private: true, dependencies: {} }),
        );
        const r = await t.cli(["install"]);
        assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /Installing dependencies/);
        assert.match(r.stdout, /Finished installing dependencies/);
        assert.ok(fs.existsSync(path.join(t.dir, "package-lock.json")));
    });
});
