import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseHostArgs } from "../../../tools/languageHost/args";
import { pluginOf, programDependencies, requiredPackages } from "../../../tools/languageHost/packages";
import {
    parseRuntimeOptions,
    type RunSpec,
    runCommand,
    runtimeConfig,
    splitShellWords,
} from "../../../tools/languageHost/run";

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
    monitorAddress: "127.0.0.1:4001",
    engineAddress: "127.0.0.1:4002",
    organization: "organization",
    project: "site",
    stack: "dev",
    rootDirectory: "/repo",
    programDirectory: "/repo/infra",
    entryPoint: ".",
    pwd: "/repo/infra",
    dryRun: false,
    parallel: 16,
    tracing: "",
    args: [],
    config: {},
    configSecretKeys: [],
    options: {},
    ...over,
});

describe("language host: command line", () => {
    it("reads the engine address and Go-style flags", () => {
        assert.deepEqual(parseHostArgs(["-tracing", "http://t", "127.0.0.1:5000"]), {
            runtime: "nodejs",
            showVersion: false,
            tracing: "http://t",
            engineAddress: "127.0.0.1:5000",
        });
        assert.deepEqual(parseHostArgs(["--runtime=nodejs", "-version"]), {
            runtime: "nodejs",
            showVersion: true,
            engineAddress: undefined,
        });
    });

    it("refuses an unknown flag and a flag without its value", () => {
        assert.throws(() => parseHostArgs(["-root", "/x", "addr"]), /flag provided but not defined: -root/);
        assert.throws(() => parseHostArgs(["-tracing"]), /flag needs an argument: -tracing/);
    });
});

describe("language host: the program's command line", () => {
    it("passes every argument cmd/run takes, in the official host's order", () => {
        const { args, env, cwd } = runCommand(
            spec({ dryRun: true, args: ["extra"], tracing: "http://t" }),
            "/repo/node_modules/@pulumi/pulumi/cmd/run/index.js",
            { PATH: "/bin" },
        );
        assert.deepEqual(args, [
            "/repo/node_modules/@pulumi/pulumi/cmd/run/index.js",
            "--monitor",
            "127.0.0.1:4001",
            "--engine",
            "127.0.0.1:4002",
            "--organization",
            "organization",
            "--project",
            "site",
            "--root-directory",
            "/repo",
            "--stack",
            "dev",
            "--pwd",
            "/repo/infra",
            "--dry-run",
            "--parallel",
            "16",
            "--tracing",
            "http://t",
            ".",
            "extra",
        ]);
        assert.equal(cwd, "/repo/infra");
        assert.equal(env.PATH, "/bin");
        assert.equal(env.PULUMI_NODEJS_TYPESCRIPT, "true");
        assert.equal(env.PULUMI_CONFIG, "{}");
        assert.equal(env.PULUMI_CONFIG_SECRET_KEYS, "[]");
    });

    it("puts nodeargs before the run script and honours typescript: false and tsconfig", () => {
        const { args, env } = runCommand(
            spec({ options: { nodeargs: "--max-old-space-size=4096 --title 'a b'", typescript: false } }),
            "run.js",
            { PULUMI_NODEJS_TYPESCRIPT: "true" },
        );
        assert.deepEqual(args.slice(0, 4), ["--max-old-space-size=4096", "--title", "a b", "run.js"]);
        assert.equal(env.PULUMI_NODEJS_TYPESCRIPT, undefined);
        const withTsconfig = runCommand(spec({ options: { tsconfig: "tsconfig.pulumi.json" } }), "run.js", {});
        assert.equal(withTsconfig.env.PULUMI_NODEJS_TSCONFIG_PATH, "tsconfig.pulumi.json");
    });

    it("hands config to cmd/run as namespace:config:name, secret keys as a list", () => {
        const { env } = runCommand(
            spec({ config: { "site:packages": '["hello"]', "aws:region": "x" }, configSecretKeys: ["site:key"] }),
            "run.js",
            {},
        );
        assert.deepEqual(JSON.parse(env.PULUMI_CONFIG!), {
            "site:config:packages": '["hello"]',
            "aws:config:region": "x",
        });
        assert.deepEqual(JSON.parse(env.PULUMI_CONFIG_SECRET_KEYS!), ["site:key"]);
        assert.deepEqual(runtimeConfig({ "a:config:b": "1" }), { "a:config:b": "1" });
        assert.throws(() => runtimeConfig({ nonamespace: "1" }), /config key "nonamespace" has no namespace/);
    });

    it("refuses runtime options of the wrong type, naming the option", () => {
        assert.throws(() => parseRuntimeOptions({ typescript: "yes" }), /typescript must be a boolean/);
        assert.throws(() => parseRuntimeOptions({ nodeargs: 3 }), /nodeargs must be a string/);
        assert.throws(() => parseRuntimeOptions({ packagemanager: "pip" }), /packagemanager must be one of/);
    });

    it("splits node arguments like a shell", () => {
        assert.deepEqual(splitShellWords(` a "b c" 'd "e"' f\\ g "" `), ["a", "b c", 'd "e"', "f g", ""]);
        assert.throws(() => splitShellWords(`"open`), /unterminated " quote/);
    });
});

describe("language host: plugins and dependencies from node_modules", () => {
    let dir: string;
    const write = (rel: string, json: unknown) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), JSON.stringify(json));
    };

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-langhost-pkgs-"));
        write("package.json", { name: "site", dependencies: { "@pulumi/docker": "^5" }, devDependencies: { x: "1" } });
        write("node_modules/@pulumi/docker/package.json", {
            name: "@pulumi/docker",
            version: "5.2.0",
            pulumi: { resource: true },
        });
        write("node_modules/@acme/thing/package.json", {
            name: "@acme/thing",
            version: "v1.0.0",
            pulumi: { resource: true, server: "https://plugins.example" },
        });
        write("node_modules/@pulumi/pulumi/package.json", { name: "@pulumi/pulumi", version: "3.248.0" });
        write("node_modules/x/package.json", { name: "x", version: "1.2.3" });
        write("node_modules/x/node_modules/y/package.json", {
            name: "y",
            version: "2.0.0",
            pulumi: {
                resource: true,
                name: "terraform-provider",
                parameterization: { name: "p", version: "1.0.0", value: "aGk=" },
            },
        });
        // A cycle made by a link must not loop.
        fs.symlinkSync(path.join(dir, "node_modules"), path.join(dir, "node_modules/x/loop"), "dir");
        write("node_modules/broken/package.json", {});
        fs.writeFileSync(path.join(dir, "node_modules/broken/package.json"), "{not json");
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("finds every package that declares a resource plugin, with its name and version", () => {
        const { packages, problems } = requiredPackages(dir);
        const byName = Object.fromEntries(packages.map((p) => [p.name, p]));
        assert.deepEqual(Object.keys(byName).sort(), ["acme/thing", "docker", "terraform-provider"]);
        assert.equal(byName.docker.version, "v5.2.0");
        assert.equal(byName["acme/thing"].server, "https://plugins.example");
        assert.deepEqual(byName["terraform-provider"].parameterization, {
            name: "p",
            version: "1.0.0",
            value: Buffer.from("hi"),
        });
        // One unreadable package.json is reported, not fatal.
        assert.equal(problems.length, 1);
        assert.match(problems[0], /broken\/package\.json/);
    });

    it("names the field a plugin package lacks", () => {
        assert.equal(pluginOf({ name: "a", version: "1" }), undefined);
        assert.throws(
            () => pluginOf({ version: "1", pulumi: { resource: true } }, "p.json"),
            /p\.json: .*needs a "name"/,
        );
        assert.throws(() => pluginOf({ name: "a", pulumi: { resource: true } }, "p.json"), /needs a "version"/);
    });

    it("lists the program's own dependencies with installed versions, or all of node_modules", () => {
        assert.deepEqual(programDependencies(dir, false), [
            { name: "@pulumi/docker", version: "5.2.0" },
            { name: "x", version: "1.2.3" },
        ]);
        const all = programDependencies(dir, true).map((d) => `${d.name}@${d.version}`);
        assert.deepEqual(all, ["@acme/thing@v1.0.0", "@pulumi/docker@5.2.0", "@pulumi/pulumi@3.248.0", "x@1.2.3"]);
    });
});
