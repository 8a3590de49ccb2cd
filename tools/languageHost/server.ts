/**
 * The `pulumirpc.LanguageRuntime` gRPC service for Node.js programs: what the Pulumi CLI calls on
 * `pulumi-language-nodejs` for `stack init`, `config`, `preview`, `up`, `refresh`, `destroy`,
 * `stack output`, `install` and `about`. Code generation, packing, linking and plugins written in
 * Node.js answer UNIMPLEMENTED.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as langrpc from "@pulumi/pulumi/proto/language_grpc_pb";
import * as langproto from "@pulumi/pulumi/proto/language_pb";
import * as pluginproto from "@pulumi/pulumi/proto/plugin_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import { programDependencies, requiredPackages } from "./packages";
import { parseRuntimeOptions, type RunSpec, runProgram } from "./run";

export interface LanguageHostOptions {
    /** The engine's address, from the command line or the Handshake call. */
    engineAddress?: string;
    tracing?: string;
    /** Reported by GetPluginInfo. */
    version: string;
    /** Environment of the programs it runs. Defaults to this process's. */
    env?: NodeJS.ProcessEnv;
    /** Where messages for the user go (RunRequest output goes to the inherited stdout/stderr). */
    log?: (message: string) => void;
}

type ProgramInfo = langproto.ProgramInfo | undefined;

function infoOptions(info: ProgramInfo): Record<string, unknown> {
    return (info?.getOptions()?.toJavaScript() as Record<string, unknown> | undefined) ?? {};
}

function programDir(info: ProgramInfo, fallback = ""): string {
    return info?.getProgramDirectory() || fallback || process.cwd();
}

/** The first executable called `name` on PATH. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
    for (const dir of (env.PATH ?? "").split(path.delimiter)) {
        const p = path.join(dir || ".", name);
        try {
            fs.accessSync(p, fs.constants.X_OK);
            if (fs.statSync(p).isFile()) {
                return p;
            }
        } catch {
            // not here
        }
    }
    return undefined;
}

/** The package manager of a program directory: the runtime option, else its lock file, else npm. */
export function packageManagerFor(dir: string, options: Record<string, unknown>): "npm" | "yarn" | "pnpm" | "bun" {
    const wanted = options.packagemanager;
    if (wanted === "npm" || wanted === "yarn" || wanted === "pnpm" || wanted === "bun") {
        return wanted;
    }
    if (fs.existsSync(path.join(dir, "yarn.lock"))) {
        return "yarn";
    }
    if (fs.existsSync(path.join(dir, "pnpm-lock.yaml"))) {
        return "pnpm";
    }
    if (fs.existsSync(path.join(dir, "bun.lock")) || fs.existsSync(path.join(dir, "bun.lockb"))) {
        return "bun";
    }
    return "npm";
}

const unimplemented = (method: string) => (_call: unknown, callback: grpc.sendUnaryData<never>) =>
    callback({ code: grpc.status.UNIMPLEMENTED, details: `method ${method} not implemented` }, null);

/** Builds the service implementation. `running` lets Cancel stop every program in flight. */
export function languageRuntimeService(opts: LanguageHostOptions): langrpc.ILanguageRuntimeServer {
    let engineAddress = opts.engineAddress ?? "";
    const env = opts.env ?? process.env;
    const running = new Set<AbortController>();

    const unary =
        <Req, Res>(f: (req: Req) => Promise<Res> | Res) =>
        (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
            Promise.resolve()
                .then(() => f(call.request))
                .then(
                    (res) => callback(null, res),
                    (err: Error) => callback({ code: grpc.status.UNKNOWN, details: err.message }, null),
                );
        };

    return {
        handshake: unary((req: langproto.LanguageHandshakeRequest) => {
            engineAddress = req.getEngineAddress();
            return new langproto.LanguageHandshakeResponse();
        }),

        getRequiredPlugins: unimplemented("GetRequiredPlugins"),

        getRequiredPackages: unary((req: langproto.GetRequiredPackagesRequest) => {
            const { packages, problems } = requiredPackages(programDir(req.getInfo()));
            for (const p of problems) {
                opts.log?.(`while looking for plugins: ${p}`);
            }
            const res = new langproto.GetRequiredPackagesResponse();
            for (const p of packages) {
                const dep = new pluginproto.PackageDependency()
                    .setName(p.name)
                    .setKind("resource")
                    .setVersion(p.version)
                    .setServer(p.server);
                if (p.parameterization) {
                    dep.setParameterization(
                        new pluginproto.PackageParameterization()
                            .setName(p.parameterization.name)
                            .setVersion(p.parameterization.version)
                            .setValue(p.parameterization.value),
                    );
                }
                res.addPackages(dep);
            }
            return res;
        }),

        run: (call, callback) => {
            const req = call.request;
            const info = req.getInfo();
            const spec: RunSpec = {
                monitorAddress: req.getMonitorAddress(),
                engineAddress,
                organization: req.getOrganization(),
                project: req.getProject(),
                stack: req.getStack(),
                rootDirectory: info?.getRootDirectory() ?? "",
                programDirectory: programDir(info, req.getPwd()),
                entryPoint: info?.getEntryPoint() || req.getProgram() || ".",
                pwd: req.getPwd(),
                dryRun: req.getDryrun(),
                parallel: req.getParallel(),
                tracing: opts.tracing ?? "",
                args: req.getArgsList(),
                config: Object.fromEntries(req.getConfigMap().toArray()),
                configSecretKeys: req.getConfigsecretkeysList(),
                options: infoOptions(info),
            };
            const abort = new AbortController();
            running.add(abort);
            // The engine ending the call (it gave up, or was interrupted) stops the program too.
            call.on("cancelled", () => abort.abort());
            runProgram(spec, { signal: abort.signal, env }).then((outcome) => {
                running.delete(abort);
                callback(null, new langproto.RunResponse().setError(outcome.error).setBail(outcome.bail));
            });
        },

        getPluginInfo: unary(() => new pluginproto.PluginInfo().setVersion(opts.version)),

        installDependencies: (call) => {
            const req = call.request;
            const dir = programDir(req.getInfo(), req.getDirectory());
            const pm = packageManagerFor(dir, infoOptions(req.getInfo()));
            const write = (stream: "stdout" | "stderr", data: Buffer | string) => {
                const res = new langproto.InstallDependenciesResponse();
                if (stream === "stdout") {
                    res.setStdout(Buffer.from(data));
                } else {
                    res.setStderr(Buffer.from(data));
                }
                call.write(res);
            };
            write("stdout", "Installing dependencies...\n\n");
            const child = spawn(pm, ["install"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
            child.stdout.on("data", (d: Buffer) => write("stdout", d));
            child.stderr.on("data", (d: Buffer) => write("stderr", d));
            child.on("error", (err) =>
                call.destroy(Object.assign(new Error(`${pm} install: ${err.message}`), { code: grpc.status.UNKNOWN })),
            );
            child.on("close", (code) => {
                if (code === 0) {
                    write("stdout", "Finished installing dependencies\n\n");
                    call.end();
                } else {
                    call.destroy(
                        Object.assign(new Error(`${pm} install in ${dir} exited with code ${code}`), {
                            code: grpc.status.UNKNOWN,
                        }),
                    );
                }
            });
        },

        runtimeOptionsPrompts: unary((req: langproto.RuntimeOptionsRequest) => {
            parseRuntimeOptions(infoOptions(req.getInfo()));
            return new langproto.RuntimeOptionsResponse();
        }),

        template: unary(() => new langproto.TemplateResponse()),

        about: unary((req: langproto.AboutRequest) => {
            const node = onPath("node", env) ?? process.execPath;
            const pm = packageManagerFor(programDir(req.getInfo()), infoOptions(req.getInfo()));
            const version = (cmd: string) => {
                try {
                    return execFileSync(cmd, ["--version"], { env, encoding: "utf8", timeout: 10_000 }).trim();
                } catch {
                    return "";
                }
            };
            const res = new langproto.AboutResponse().setExecutable(node).setVersion(version(node));
            res.getMetadataMap().set("packagemanager", pm).set("packagemanagerVersion", version(pm));
            return res;
        }),

        getProgramDependencies: unary((req: langproto.GetProgramDependenciesRequest) => {
            const deps = programDependencies(programDir(req.getInfo(), req.getPwd()), req.getTransitivedependencies());
            return new langproto.GetProgramDependenciesResponse().setDependenciesList(
                deps.map((d) => new langproto.DependencyInfo().setName(d.name).setVersion(d.version)),
            );
        }),

        runPlugin: (call) =>
            call.destroy(
                Object.assign(new Error("method RunPlugin not implemented"), { code: grpc.status.UNIMPLEMENTED }),
            ),
        generateProgram: unimplemented("GenerateProgram"),
        generateProject: unimplemented("GenerateProject"),
        generatePackage: unimplemented("GeneratePackage"),
        pack: unimplemented("Pack"),
        link: unimplemented("Link"),

        cancel: unary(() => {
            for (const a of running) {
                a.abort();
            }
            return new emptyproto.Empty();
        }),
    };
}

/** Messages up to this size: the engine sends whole configurations and states. */
const MAX_MESSAGE_BYTES = 400 * 1024 * 1024;

/** Starts the service on 127.0.0.1 on a port the kernel picks. */
export async function serveLanguageRuntime(opts: LanguageHostOptions): Promise<{ port: number; server: grpc.Server }> {
    const server = new grpc.Server({
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    });
    server.addService(langrpc.LanguageRuntimeService, languageRuntimeService(opts));
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
            err ? reject(err) : resolve(p),
        ),
    );
    return { port, server };
}
