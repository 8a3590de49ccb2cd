/**
 * Pulumi programs run the way a deployment repository runs them: a directory with `Pulumi.yaml`
 * and `index.ts` (or `index.js`), `pulumi-airgap` installed from the tarball `npm pack` makes,
 * and the real CLI (`.tools/bin/pulumi`) started in that directory for `up`, `preview`,
 * `refresh` and `destroy`, which starts the Node.js language host from PATH like it would on a
 * site. Inputs reach the program as stack configuration (`pulumi config set`), as they would
 * in a deployment repository.
 *
 * One deployment repository is installed per test process; each program is a directory inside
 * it, so Node finds the packages by walking up, as in a repository with several stacks.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run } from "./servers/process";

/** The root of this package (package.json, .tools/): lib/test/harness is three levels below it. */
export const packageRoot = path.resolve(__dirname, "..", "..", "..");

export const pulumiBin = path.join(packageRoot, ".tools", "bin", "pulumi");

/** A config value: plain text, or a secret (encrypted in the stack file with the passphrase). */
export type ConfigValue = string | { secret: string };

export interface ResourceStep {
    op: string;
    urn: string;
    type: string;
}

export interface CliResult {
    code: number | null;
    stdout: string;
    stderr: string;
    /** Engine events the CLI wrote with --event-log. */
    events: Record<string, unknown>[];
    /** Wall time of the command, ms. */
    elapsedMs: number;
}

let repoPromise: Promise<string> | undefined;

/**
 * The deployment repository shared by this test process: `npm pack` of this package, installed
 * with `npm install` next to the TypeScript compiler a TypeScript program needs.
 */
export function deploymentRepo(): Promise<string> {
    repoPromise ??= (async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-site-repo-"));
        process.once("exit", () => {
            if (process.env.KEEP_TMP !== "1") {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
        // The package is packed from a copy of its sources, as a registry or git install would
        // get it: `npm pack` runs `prepare`, which builds lib/ (tsconfig.build.json) there. (Not in
        // this checkout: its lib/ is what this test process is running.)
        const src = path.join(dir, "src");
        for (const entry of [
            "package.json",
            "README.md",
            "tsconfig.json",
            "tsconfig.build.json",
            "provider",
            "sdk",
            "tools",
        ]) {
            fs.cpSync(path.join(packageRoot, entry), path.join(src, entry), { recursive: true });
        }
        fs.symlinkSync(path.join(packageRoot, "node_modules"), path.join(src, "node_modules"), "dir");
        const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], {
            cwd: src,
            timeoutMs: 300_000,
        });
        const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string }[];
        const own = require(path.join(packageRoot, "package.json")) as {
            dependencies: Record<string, string>;
            devDependencies: Record<string, string>;
        };
        fs.writeFileSync(
            path.join(dir, "package.json"),
            `${JSON.stringify(
                {
                    name: "site-deployment",
                    private: true,
                    dependencies: {
                        "@pulumi/pulumi": own.dependencies["@pulumi/pulumi"],
                        "pulumi-airgap": `file:./${filename}`,
                    },
                    devDependencies: {
                        "@types/node": own.devDependencies["@types/node"],
                        typescript: own.devDependencies.typescript,
                    },
                },
                null,
                2,
            )}\n`,
        );
        await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], {
            cwd: dir,
            timeoutMs: 600_000,
        });
        return dir;
    })();
    return repoPromise;
}

export interface ProgramOptions {
    /** The program: TypeScript (index.ts) unless `language` says JavaScript (index.js). */
    source: string;
    language?: "typescript" | "javascript";
    /**
     * Stack configuration, read before every operation: changed keys are set again, keys no
     * longer listed are removed.
     */
    config?: () => Record<string, ConfigValue>;
    /** Extra environment for the CLI and everything it starts. */
    env?: Record<string, string>;
}

export interface ProgramStack {
    /** The program's directory (Pulumi.yaml, index.ts). */
    readonly dir: string;
    /** The file backend's directory. */
    readonly stateDir: string;
    up(): Promise<{ steps: ResourceStep[]; outputs: Record<string, unknown>; changes: Record<string, number> }>;
    /** `pulumi preview --diff`; with `expectNoChanges` the CLI itself fails on any change. */
    preview(opts?: { expectNoChanges?: boolean }): Promise<{ steps: ResourceStep[]; changes: Record<string, number> }>;
    refresh(): Promise<{ changes: Record<string, number> }>;
    destroy(): Promise<{ changes: Record<string, number> }>;
    outputs(): Promise<Record<string, unknown>>;
    /** Runs `pulumi <args>` in the program directory without throwing on failure. */
    cli(args: string[], opts?: { timeoutMs?: number }): Promise<CliResult>;
    /** Output of the last operation (for failure messages). */
    lastOutput(): string;
    /** The stack's checkpoint file as bytes. */
    stateBytes(): Buffer;
    /**
     * The stack's state as `pulumi stack export --show-secrets` gives it, without the manifest
     * (the time of the last operation): what must not change when an operation fails. (The file
     * itself does change: a failed update rewrites the manifest time and re-encrypts secrets.)
     */
    stateContent(): Promise<unknown>;
    dispose(): Promise<void>;
}

/** The environment of every CLI call: local file backend, passphrase secrets, our tools first. */
export function cliEnv(stateDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
        ...process.env,
        PULUMI_BACKEND_URL: `file://${stateDir}`,
        PULUMI_CONFIG_PASSPHRASE: "test-passphrase",
        PULUMI_HOME: path.join(stateDir, ".pulumi-home"),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        NO_COLOR: "1",
        // Makes the CLI accept --event-log (the engine events the Automation API reads too).
        PULUMI_DEBUG_COMMANDS: "true",
        PATH: `${path.join(packageRoot, ".tools", "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
        ...extra,
    };
}

function readEvents(file: string): Record<string, unknown>[] {
    if (!fs.existsSync(file)) {
        return [];
    }
    return fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
}

type Meta = { op: string; urn: string; type: string };

function stepsOf(events: Record<string, unknown>[]): ResourceStep[] {
    const steps: ResourceStep[] = [];
    for (const e of events) {
        const pre = e.resourcePreEvent as { metadata?: Meta } | undefined;
        if (pre?.metadata) {
            steps.push({ op: pre.metadata.op, urn: pre.metadata.urn, type: pre.metadata.type });
        }
    }
    return steps;
}

function changesOf(events: Record<string, unknown>[]): Record<string, number> {
    for (const e of events) {
        const summary = e.summaryEvent as { resourceChanges?: Record<string, number> } | undefined;
        if (summary) {
            return summary.resourceChanges ?? {};
        }
    }
    return {};
}

/** Writes a program directory named after `name` in the shared deployment repository. */
export async function createProgramStack(name: string, opts: ProgramOptions): Promise<ProgramStack> {
    const repo = await deploymentRepo();
    const dir = fs.mkdtempSync(path.join(repo, `${name}-`));
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `airgap-state-${name}-`));
    const entry = opts.language === "javascript" ? "index.js" : "index.ts";
    fs.writeFileSync(
        path.join(dir, "Pulumi.yaml"),
        `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: ${opts.language !== "javascript"}\nmain: ${entry}\n`,
    );
    fs.writeFileSync(path.join(dir, entry), opts.source);
    const env = cliEnv(stateDir, opts.env);
    fs.mkdirSync(env.PULUMI_HOME!, { recursive: true });

    let output = "";
    const cli = (args: string[], o: { timeoutMs?: number } = {}): Promise<CliResult> => {
        const eventLog = path.join(stateDir, `events-${process.hrtime.bigint()}.jsonl`);
        const wantsEvents = ["up", "preview", "refresh", "destroy"].includes(args[0]);
        const full = wantsEvents ? [...args, "--event-log", eventLog] : args;
        const start = Date.now();
        return run(pulumiBin, full, { cwd: dir, env, check: false, timeoutMs: o.timeoutMs ?? 300_000 }).then((r) => {
            const events = readEvents(eventLog);
            fs.rmSync(eventLog, { force: true });
            output = `$ pulumi ${args.join(" ")}\n${r.stdout}${r.stderr}`;
            return { code: r.code, stdout: r.stdout, stderr: r.stderr, events, elapsedMs: Date.now() - start };
        });
    };
    const must = async (args: string[]): Promise<CliResult> => {
        const r = await cli(args);
        if (r.code !== 0) {
            throw new Error(`pulumi ${args.join(" ")} exited with ${r.code}\n--- pulumi output ---\n${output}`);
        }
        return r;
    };

    const init = await cli(["stack", "init", "test", "--secrets-provider", "passphrase", "--non-interactive"]);
    if (init.code !== 0) {
        throw new Error(`pulumi stack init failed\n${output}`);
    }
    const applied = new Map<string, string>();
    const applyConfig = async () => {
        const wanted = opts.config?.() ?? {};
        const args: string[] = [];
        for (const [key, value] of Object.entries(wanted)) {
            const digest = createHash("sha256").update(JSON.stringify(value)).digest("hex");
            if (applied.get(key) === digest) {
                continue;
            }
            args.push(typeof value === "string" ? "--plaintext" : "--secret");
            args.push(`${key}=${typeof value === "string" ? value : value.secret}`);
            applied.set(key, digest);
        }
        if (args.length > 0) {
            await must(["config", "set-all", ...args]);
        }
        for (const key of [...applied.keys()]) {
            if (!(key in wanted)) {
                await must(["config", "rm", key]);
                applied.delete(key);
            }
        }
    };

    const t: ProgramStack = {
        dir,
        stateDir,
        async up() {
            await applyConfig();
            const r = await must(["up", "--yes", "--skip-preview", "--diff", "--non-interactive"]);
            return { steps: stepsOf(r.events), outputs: await t.outputs(), changes: changesOf(r.events) };
        },
        async preview(o = {}) {
            await applyConfig();
            const r = await must([
                "preview",
                "--diff",
                "--non-interactive",
                ...(o.expectNoChanges ? ["--expect-no-changes"] : []),
            ]);
            return { steps: stepsOf(r.events), changes: changesOf(r.events) };
        },
        async refresh() {
            await applyConfig();
            const r = await must(["refresh", "--yes", "--skip-preview", "--non-interactive"]);
            return { changes: changesOf(r.events) };
        },
        async destroy() {
            await applyConfig();
            const r = await must(["destroy", "--yes", "--skip-preview", "--non-interactive"]);
            return { changes: changesOf(r.events) };
        },
        async outputs() {
            const saved = output;
            const r = await must(["stack", "output", "--json", "--show-secrets"]);
            output = saved;
            return JSON.parse(r.stdout) as Record<string, unknown>;
        },
        cli: async (args, o) => {
            await applyConfig();
            return cli(args, o);
        },
        lastOutput: () => output,
        stateBytes() {
            const file = path.join(stateDir, ".pulumi", "stacks", name, "test.json");
            return fs.readFileSync(file);
        },
        async stateContent() {
            const saved = output;
            const r = await must(["stack", "export", "--show-secrets"]);
            output = saved;
            return stateWithoutManifest(r.stdout);
        },
        async dispose() {
            await cli(["stack", "rm", "--yes", "--force", "--non-interactive"]);
            if (process.env.KEEP_TMP !== "1") {
                fs.rmSync(dir, { recursive: true, force: true });
                fs.rmSync(stateDir, { recursive: true, force: true });
            }
        },
    };
    return t;
}

/**
 * `pulumi stack export --show-secrets` output without the manifest (the time of the last
 * operation): what must not change when an operation fails.
 */
export function stateWithoutManifest(exportJson: string): unknown {
    const exported = JSON.parse(exportJson) as { deployment?: { manifest?: unknown } };
    delete exported.deployment?.manifest;
    return exported;
}

/** The messages of the error diagnostics the engine reported, from the event log. */
export function errorDiagnostics(r: CliResult): string[] {
    return r.events
        .map((e) => e.diagnosticEvent as { severity?: string; message?: string } | undefined)
        .filter((d) => d?.severity === "error")
        .map((d) => d!.message ?? "");
}

/** The stack's state files (under its file backend) whose text contains any of `needles`. */
export function stateFilesContaining(t: ProgramStack, needles: readonly string[]): string[] {
    const hits: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) {
                if (e.name !== ".pulumi-home") {
                    walk(p);
                }
            } else if (e.name.endsWith(".json") && needles.some((n) => fs.readFileSync(p, "utf8").includes(n))) {
                hits.push(p);
            }
        }
    };
    walk(t.stateDir);
    return hits;
}
