/**
 * Runs a Node.js Pulumi program the way the official language host does: `node [nodeargs]
 * <@pulumi/pulumi/cmd/run> --monitor … --engine … <entry point> [args]`, resolved from the
 * program's own node_modules, with the configuration in PULUMI_CONFIG and the secret keys in
 * PULUMI_CONFIG_SECRET_KEYS. TypeScript is run by cmd/run itself through ts-node when
 * PULUMI_NODEJS_TYPESCRIPT is set (the `typescript` runtime option, on unless turned off).
 */
import { spawn } from "node:child_process";

/** Everything a run needs, taken from the engine's RunRequest and the handshake. */
export interface RunSpec {
    monitorAddress: string;
    engineAddress: string;
    organization: string;
    project: string;
    stack: string;
    rootDirectory: string;
    programDirectory: string;
    /** The program's entry point relative to the program directory ("." for package.json's main). */
    entryPoint: string;
    /** Working directory of the program. Defaults to the program directory. */
    pwd: string;
    dryRun: boolean;
    parallel: number;
    tracing: string;
    /** Extra arguments for the program. */
    args: string[];
    /** `namespace:name` → value, as the engine sends it. */
    config: Record<string, string>;
    configSecretKeys: string[];
    /** Runtime options from Pulumi.yaml (`runtime.options`). */
    options: Record<string, unknown>;
}

/** Exit code of cmd/run meaning "the error was already shown to the user". */
export const EXIT_ERROR_ALREADY_SHOWN = 32;

export interface NodeOptions {
    typescript: boolean;
    tsconfig?: string;
    nodeargs: string[];
}

/** Validates the runtime options the way the official host reads them. */
export function parseRuntimeOptions(options: Record<string, unknown>): NodeOptions {
    const out: NodeOptions = { typescript: true, nodeargs: [] };
    if (options.typescript !== undefined) {
        if (typeof options.typescript !== "boolean") {
            throw new Error("runtime option typescript must be a boolean");
        }
        out.typescript = options.typescript;
    }
    if (options.tsconfig !== undefined) {
        if (typeof options.tsconfig !== "string") {
            throw new Error("runtime option tsconfig must be a string");
        }
        out.tsconfig = options.tsconfig;
    }
    if (options.nodeargs !== undefined) {
        if (typeof options.nodeargs !== "string") {
            throw new Error("runtime option nodeargs must be a string");
        }
        out.nodeargs = splitShellWords(options.nodeargs);
    }
    if (options.packagemanager !== undefined) {
        const pm = options.packagemanager;
        if (typeof pm !== "string" || !["auto", "npm", "yarn", "pnpm", "bun"].includes(pm)) {
            throw new Error(
                `runtime option packagemanager must be one of auto, npm, yarn, pnpm or bun, got ${JSON.stringify(pm)}`,
            );
        }
    }
    return out;
}

/** Splits a command line into words: whitespace separates, quotes group, a backslash escapes. */
export function splitShellWords(text: string): string[] {
    const words: string[] = [];
    let word = "";
    let inWord = false;
    let quote: '"' | "'" | undefined;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quote) {
            if (c === quote) {
                quote = undefined;
            } else if (c === "\\" && quote === '"' && i + 1 < text.length) {
                word += text[++i];
            } else {
                word += c;
            }
        } else if (c === '"' || c === "'") {
            quote = c;
            inWord = true;
        } else if (c === "\\" && i + 1 < text.length) {
            word += text[++i];
            inWord = true;
        } else if (/\s/.test(c)) {
            if (inWord) {
                words.push(word);
            }
            word = "";
            inWord = false;
        } else {
            word += c;
            inWord = true;
        }
    }
    if (quote) {
        throw new Error(`unterminated ${quote} quote in ${JSON.stringify(text)}`);
    }
    if (inWord) {
        words.push(word);
    }
    return words;
}

/**
 * Config keys as cmd/run reads them: `namespace:config:name` (the engine sends `namespace:name`;
 * the SDK accepts both, and this is the form every SDK version accepts).
 */
export function runtimeConfig(config: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
        const i = key.indexOf(":");
        if (i <= 0) {
            throw new Error(`config key ${JSON.stringify(key)} has no namespace: write <namespace>:<name>`);
        }
        const ns = key.slice(0, i);
        const name = key.slice(i + 1).replace(/^config:/, "");
        out[`${ns}:config:${name}`] = value;
    }
    return out;
}

/** Finds `@pulumi/pulumi/cmd/run` from the program's directory, as Node would from there. */
export function locateRunScript(programDirectory: string, env: NodeJS.ProcessEnv = process.env): string {
    const override = env.PULUMI_LANGUAGE_NODEJS_RUN_PATH;
    const target = override || "@pulumi/pulumi/cmd/run";
    try {
        return require.resolve(target, { paths: [programDirectory] });
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND") {
            throw new Error(
                `It looks like the Pulumi SDK has not been installed in ${programDirectory}: ` +
                    `${target} was not found. Have you run npm install (or pulumi install)?`,
            );
        }
        throw err;
    }
}

/** The node command line and environment for a run; pure, so it can be checked without running it. */
export function runCommand(
    spec: RunSpec,
    runScript: string,
    baseEnv: NodeJS.ProcessEnv = process.env,
): { args: string[]; env: NodeJS.ProcessEnv; cwd: string } {
    const opts = parseRuntimeOptions(spec.options);
    const args = [...opts.nodeargs, runScript];
    const flag = (name: string, value: string | number) => {
        if (value !== "" && value !== undefined) {
            args.push(`--${name}`, String(value));
        }
    };
    flag("monitor", spec.monitorAddress);
    flag("engine", spec.engineAddress);
    flag("organization", spec.organization);
    flag("project", spec.project);
    flag("root-directory", spec.rootDirectory);
    flag("stack", spec.stack);
    flag("pwd", spec.programDirectory);
    if (spec.dryRun) {
        args.push("--dry-run");
    }
    flag("parallel", spec.parallel);
    flag("tracing", spec.tracing);
    args.push(spec.entryPoint || ".", ...spec.args);

    const env: NodeJS.ProcessEnv = {
        ...baseEnv,
        PULUMI_CONFIG: JSON.stringify(runtimeConfig(spec.config)),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(spec.configSecretKeys),
    };
    delete env.PULUMI_NODEJS_TYPESCRIPT;
    delete env.PULUMI_NODEJS_TSCONFIG_PATH;
    if (opts.typescript) {
        env.PULUMI_NODEJS_TYPESCRIPT = "true";
    }
    if (opts.tsconfig) {
        env.PULUMI_NODEJS_TSCONFIG_PATH = opts.tsconfig;
    }
    return { args, env, cwd: spec.pwd || spec.programDirectory };
}

/** The outcome of a run as the engine's RunResponse carries it. */
export interface RunOutcome {
    /** "" when the program succeeded, or when it failed and said why itself (`bail`). */
    error: string;
    /** The program failed and already showed the user why: the engine adds nothing. */
    bail: boolean;
}

/** How long a cancelled program gets between SIGINT and SIGKILL. */
export const CANCEL_GRACE_MS = 5000;

/**
 * Runs the program to its end with the host's stdout and stderr (the engine shows both).
 * `signal` cancels it: SIGINT first, SIGKILL after a grace period.
 */
export function runProgram(
    spec: RunSpec,
    opts: { node?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv; stdio?: "inherit" | "pipe" } = {},
): Promise<RunOutcome & { stdout?: string; stderr?: string }> {
    let runScript: string;
    let command: ReturnType<typeof runCommand>;
    try {
        runScript = locateRunScript(spec.programDirectory, opts.env);
        command = runCommand(spec, runScript, opts.env);
    } catch (err) {
        return Promise.resolve({ error: (err as Error).message, bail: false });
    }
    return new Promise((resolve) => {
        const child = spawn(opts.node ?? process.execPath, command.args, {
            cwd: command.cwd,
            env: command.env,
            stdio: ["ignore", opts.stdio ?? "inherit", opts.stdio ?? "inherit"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (d: Buffer) => {
            stdout += d.toString();
        });
        child.stderr?.on("data", (d: Buffer) => {
            stderr += d.toString();
        });
        let killTimer: NodeJS.Timeout | undefined;
        const onAbort = () => {
            child.kill("SIGINT");
            killTimer = setTimeout(() => child.kill("SIGKILL"), CANCEL_GRACE_MS);
        };
        if (opts.signal?.aborted) {
            onAbort();
        } else {
            opts.signal?.addEventListener("abort", onAbort, { once: true });
        }
        const done = (outcome: RunOutcome) => {
            clearTimeout(killTimer);
            opts.signal?.removeEventListener("abort", onAbort);
            resolve(opts.stdio === "pipe" ? { ...outcome, stdout, stderr } : outcome);
        };
        child.on("error", (err) =>
            done({ error: `Problem executing program (could not run language executor): ${err.message}`, bail: false }),
        );
        child.on("close", (code, sig) => {
            if (code === 0) {
                done({ error: "", bail: false });
            } else if (code === EXIT_ERROR_ALREADY_SHOWN) {
                done({ error: "", bail: true });
            } else if (code !== null) {
                done({ error: `Program exited with non-zero exit code: ${code}`, bail: false });
            } else {
                done({ error: `Program exited unexpectedly: killed by ${sig}`, bail: false });
            }
        });
    });
}
