import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as langrpc from "@pulumi/pulumi/proto/language_grpc_pb";
import * as langproto from "@pulumi/pulumi/proto/language_pb";
import type * as pluginproto from "@pulumi/pulumi/proto/plugin_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import { serveLanguageRuntime } from "../../../tools/languageHost/server";

/**
 * The language host's RPCs, called by a gRPC client as the CLI calls them. The program is a
 * stand-in for @pulumi/pulumi/cmd/run in the program's node_modules that records what it was
 * given and then behaves as its `mode` config says.
 */
const fakeRun = `
const fs = require("fs");
const config = JSON.parse(process.env.PULUMI_CONFIG || "{}");
fs.writeFileSync(process.env.RECORD_FILE, JSON.stringify({
    argv: process.argv.slice(2),
    cwd: process.cwd(),
    config,
    secretKeys: JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS || "null"),
    typescript: process.env.PULUMI_NODEJS_TYPESCRIPT || null,
}));
const mode = config["test:config:mode"] || "ok";
if (mode === "bail") process.exit(32);
if (mode === "fail") process.exit(3);
if (mode === "hang") setInterval(() => {}, 1000);
`;

type Client = langrpc.LanguageRuntimeClient;

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => unknown;

/** One unary call, as a promise. */
function call<Res>(client: Client, method: keyof Client, req: unknown): Promise<Res> {
    const f = client[method] as unknown as Unary;
    return new Promise((resolve, reject) =>
        f.call(client, req, (err, res) => (err ? reject(err) : resolve(res as Res))),
    );
}

describe("language host RPCs (no CLI)", function () {
    this.timeout(60_000);

    let dir: string;
    let program: string;
    let record: string;
    let server: grpc.Server;
    let client: Client;

    const info = (programDirectory = program, options: Record<string, unknown> = {}) =>
        new langproto.ProgramInfo()
            .setRootDirectory(dir)
            .setProgramDirectory(programDirectory)
            .setEntryPoint(".")
            .setOptions(structproto.Struct.fromJavaScript(options as Record<string, structproto.JavaScriptValue>));

    const runRequest = (mode: string, programDirectory = program) => {
        const req = new langproto.RunRequest()
            .setMonitorAddress("127.0.0.1:1")
            .setProject("site")
            .setStack("dev")
            .setOrganization("organization")
            .setPwd(programDirectory)
            .setDryrun(true)
            .setParallel(4)
            .setInfo(info(programDirectory))
            .setConfigsecretkeysList(["site:key"]);
        req.getConfigMap().set("test:mode", mode).set("site:key", "s3cret");
        return req;
    };

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-langhost-"));
        program = path.join(dir, "infra");
        record = path.join(dir, "record.json");
        const run = path.join(program, "node_modules/@pulumi/pulumi/cmd/run");
        fs.mkdirSync(run, { recursive: true });
        fs.writeFileSync(path.join(run, "index.js"), fakeRun);
        fs.writeFileSync(
            path.join(program, "node_modules/@pulumi/pulumi/package.json"),
            '{"name":"@pulumi/pulumi","version":"3.248.0"}',
        );
        fs.mkdirSync(path.join(program, "node_modules/@pulumi/command"), { recursive: true });
        fs.writeFileSync(
            path.join(program, "node_modules/@pulumi/command/package.json"),
            '{"name":"@pulumi/command","version":"4.5.0","pulumi":{"resource":true}}',
        );
        fs.writeFileSync(
            path.join(program, "package.json"),
            '{"name":"infra","private":true,"dependencies":{"@pulumi/pulumi":"3.248.0"}}',
        );
        const served = await serveLanguageRuntime({
            version: "3.248.0",
            engineAddress: "127.0.0.1:2",
            env: { ...process.env, RECORD_FILE: record },
        });
        server = served.server;
        client = new langrpc.LanguageRuntimeClient(`127.0.0.1:${served.port}`, grpc.credentials.createInsecure());
    });

    after(() => {
        client?.close();
        server?.forceShutdown();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("GetPluginInfo reports its version", async () => {
        const res = await call<pluginproto.PluginInfo>(client, "getPluginInfo", new emptyproto.Empty());
        assert.equal(res.getVersion(), "3.248.0");
    });

    it("Run starts cmd/run from the program's node_modules with the engine's arguments and config", async () => {
        const res = await call<langproto.RunResponse>(client, "run", runRequest("ok"));
        assert.equal(res.getError(), "");
        assert.equal(res.getBail(), false);
        const got = JSON.parse(fs.readFileSync(record, "utf8"));
        assert.deepEqual(got.argv, [
            "--monitor",
            "127.0.0.1:1",
            "--engine",
            "127.0.0.1:2",
            "--organization",
            "organization",
            "--project",
            "site",
            "--root-directory",
            dir,
            "--stack",
            "dev",
            "--pwd",
            program,
            "--dry-run",
            "--parallel",
            "4",
            ".",
        ]);
        assert.equal(got.cwd, program);
        assert.deepEqual(got.config, { "test:config:mode": "ok", "site:config:key": "s3cret" });
        assert.deepEqual(got.secretKeys, ["site:key"]);
        assert.equal(got.typescript, "true");
    });

    it("Handshake replaces the engine address a later Run passes on", async () => {
        await call<langproto.LanguageHandshakeResponse>(
            client,
            "handshake",
            new langproto.LanguageHandshakeRequest().setEngineAddress("127.0.0.1:9"),
        );
        await call<langproto.RunResponse>(client, "run", runRequest("ok"));
        const got = JSON.parse(fs.readFileSync(record, "utf8"));
        assert.equal(got.argv[got.argv.indexOf("--engine") + 1], "127.0.0.1:9");
    });

    it("Run answers bail for exit code 32 (the program already showed its error) and an error otherwise", async () => {
        const bail = await call<langproto.RunResponse>(client, "run", runRequest("bail"));
        assert.deepEqual([bail.getError(), bail.getBail()], ["", true]);
        const fail = await call<langproto.RunResponse>(client, "run", runRequest("fail"));
        assert.deepEqual([fail.getError(), fail.getBail()], ["Program exited with non-zero exit code: 3", false]);
    });

    it("Run in a directory without the Pulumi SDK says to install it", async () => {
        const bare = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-langhost-bare-"));
        try {
            const res = await call<langproto.RunResponse>(client, "run", runRequest("ok", bare));
            assert.match(res.getError(), /Pulumi SDK has not been installed in .*npm install/);
        } finally {
            fs.rmSync(bare, { recursive: true, force: true });
        }
    });

    it("Cancel stops a running program, and Run returns", async () => {
        const started = Date.now();
        const running = call<langproto.RunResponse>(client, "run", runRequest("hang"));
        // Wait until the program is up (it records first), then cancel.
        fs.rmSync(record, { force: true });
        while (!fs.existsSync(record)) {
            await new Promise((r) => setTimeout(r, 50));
        }
        await call<emptyproto.Empty>(client, "cancel", new emptyproto.Empty());
        const res = await running;
        assert.match(res.getError(), /killed by SIGINT/);
        assert.ok(Date.now() - started < 30_000);
    });

    it("GetRequiredPackages lists the resource plugins of the program's packages", async () => {
        const res = await call<langproto.GetRequiredPackagesResponse>(
            client,
            "getRequiredPackages",
            new langproto.GetRequiredPackagesRequest().setInfo(info()),
        );
        assert.deepEqual(
            res.getPackagesList().map((p) => [p.getName(), p.getKind(), p.getVersion()]),
            [["command", "resource", "v4.5.0"]],
        );
    });

    it("GetProgramDependencies and About describe the program and its runtime", async () => {
        const deps = await call<langproto.GetProgramDependenciesResponse>(
            client,
            "getProgramDependencies",
            new langproto.GetProgramDependenciesRequest().setInfo(info()),
        );
        assert.deepEqual(
            deps.getDependenciesList().map((d) => `${d.getName()}@${d.getVersion()}`),
            ["@pulumi/pulumi@3.248.0"],
        );
        const about = await call<langproto.AboutResponse>(
            client,
            "about",
            new langproto.AboutRequest().setInfo(info()),
        );
        assert.match(about.getExecutable(), /node$/);
        assert.match(about.getVersion(), /^v\d+\./);
        assert.equal(about.getMetadataMap().get("packagemanager"), "npm");
    });

    it("RuntimeOptionsPrompts refuses bad options; code generation answers UNIMPLEMENTED", async () => {
        await assert.rejects(
            call<langproto.RuntimeOptionsResponse>(
                client,
                "runtimeOptionsPrompts",
                new langproto.RuntimeOptionsRequest().setInfo(info(program, { typescript: "yes" })),
            ),
            /typescript must be a boolean/,
        );
        await assert.rejects(
            call<langproto.GenerateProgramResponse>(client, "generateProgram", new langproto.GenerateProgramRequest()),
            (err: grpc.ServiceError) => err.code === grpc.status.UNIMPLEMENTED,
        );
    });

    it("InstallDependencies streams npm install's output", async () => {
        const empty = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-langhost-install-"));
        fs.writeFileSync(path.join(empty, "package.json"), '{"name":"empty","private":true}');
        try {
            const stream = client.installDependencies(
                new langproto.InstallDependenciesRequest().setInfo(info(empty)).setDirectory(empty),
            );
            let out = "";
            for await (const chunk of stream as AsyncIterable<langproto.InstallDependenciesResponse>) {
                out += Buffer.from(chunk.getStdout_asU8()).toString();
            }
            assert.match(out, /Installing dependencies/);
            assert.match(out, /Finished installing dependencies/);
            assert.ok(fs.existsSync(path.join(empty, "package-lock.json")));
        } finally {
            fs.rmSync(empty, { recursive: true, force: true });
        }
    });
});

describe("language host process", function () {
    this.timeout(30_000);

    it("prints its port on the first line, serves, and stops on SIGTERM", async () => {
        const main = path.resolve(__dirname, "../../../tools/languageHost/main.js");
        const child = spawn(process.execPath, [main, "127.0.0.1:1"], { stdio: ["ignore", "pipe", "inherit"] });
        try {
            const port = await new Promise<number>((resolve, reject) => {
                let text = "";
                child.stdout.on("data", (d: Buffer) => {
                    text += d.toString();
                    if (text.includes("\n")) {
                        resolve(Number(text.split("\n")[0]));
                    }
                });
                child.on("exit", (code) => reject(new Error(`exited with ${code}`)));
            });
            assert.ok(port > 0);
            const client = new langrpc.LanguageRuntimeClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
            const res = await call<pluginproto.PluginInfo>(client, "getPluginInfo", new emptyproto.Empty());
            assert.match(res.getVersion(), /^\d+\.\d+\.\d+/);
            client.close();
        } finally {
            const exited = new Promise((r) => child.on("exit", r));
            child.kill("SIGTERM");
            assert.equal(await exited, 0);
        }
    });
});
