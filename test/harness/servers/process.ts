import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

/**
 * Running the real tools that tests depend on: one-shot commands (`run`) and long-running
 * servers (`startProcess`), always without a shell, with their output captured so that a
 * failure message says what the tool said.
 */

export interface RunOptions {
    cwd?: string;
    /** Replaces the environment when given; merge with `process.env` yourself to extend it. */
    env?: NodeJS.ProcessEnv;
    /** Written to stdin, which is then closed. stdin is empty otherwise. */
    input?: string | Buffer;
    /** Kills the command (SIGKILL) after this long. Defaults to 120 s. */
    timeoutMs?: number;
    /** Throw when the exit code is not 0. Defaults to true. */
    check?: boolean;
}

export interface RunResult {
    /** The exit code, or null when the command was killed by a signal. */
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    stdoutBytes: Buffer;
}

/** Formats a command line for messages only; the command is never run through a shell. */
export function describeCommand(cmd: string, args: readonly string[]): string {
    return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** Runs a command to completion. Throws (unless `check: false`) with its output when it fails. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const check = options.check ?? true;
    return new Promise((resolve, reject) => {
        let child: ChildProcess;
        try {
            child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: "pipe" });
        } catch (cause) {
            reject(new Error(`starting ${describeCommand(cmd, args)}`, { cause }));
            return;
        }
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout?.on("data", (b: Buffer) => out.push(b));
        child.stderr?.on("data", (b: Buffer) => err.push(b));
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, timeoutMs);
        child.on("error", (cause) => {
            clearTimeout(timer);
            reject(new Error(`starting ${describeCommand(cmd, args)}`, { cause }));
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            const stdoutBytes = Buffer.concat(out);
            const result: RunResult = {
                code,
                signal,
                stdout: stdoutBytes.toString("utf8"),
                stderr: Buffer.concat(err).toString("utf8"),
                stdoutBytes,
            };
            if (timedOut) {
                reject(new Error(`${describeCommand(cmd, args)} timed out after ${timeoutMs} ms\n${outputOf(result)}`));
            } else if (check && code !== 0) {
                reject(
                    new Error(
                        `${describeCommand(cmd, args)} failed with ${code === null ? `signal ${signal}` : `exit code ${code}`}\n${outputOf(result)}`,
                    ),
                );
            } else {
                resolve(result);
            }
        });
        child.stdin?.on("error", () => {
            // the command may exit without reading its input
        });
        child.stdin?.end(options.input);
    });
}

function outputOf(result: Pick<RunResult, "stdout" | "stderr">): string {
    return `--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${tail(result.stderr)}`;
}

function tail(text: string, max = 8000): string {
    return text.length <= max ? text : `[... ${text.length - max} characters cut ...]\n${text.slice(-max)}`;
}

export interface StartProcessOptions {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** Used in messages, e.g. "docker-registry". Defaults to the command. */
    name?: string;
}

/** A long-running child process whose stdout and stderr go to an in-memory log. */
export interface ManagedProcess {
    readonly name: string;
    readonly pid: number | undefined;
    /** Everything the process wrote so far, stdout and stderr interleaved. */
    log(): string;
    /** Set once the process has exited. */
    readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    /** Resolves when the process has exited. */
    readonly exited: Promise<void>;
    /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves once the process is gone. */
    stop(graceMs?: number): Promise<void>;
}

export function startProcess(cmd: string, args: readonly string[], options: StartProcessOptions = {}): ManagedProcess {
    const name = options.name ?? cmd;
    const chunks: Buffer[] = [];
    let exit: ManagedProcess["exit"];
    const child = spawn(cmd, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (b: Buffer) => chunks.push(b));
    child.stderr.on("data", (b: Buffer) => chunks.push(b));
    const exited = new Promise<void>((resolve) => {
        child.on("error", (cause) => {
            chunks.push(Buffer.from(`\n[${name}: ${cause.message}]\n`));
            exit ??= { code: null, signal: null };
            resolve();
        });
        child.on("close", (code, signal) => {
            exit = { code, signal };
            resolve();
        });
    });
    return {
        name,
        pid: child.pid,
        log: () => Buffer.concat(chunks).toString("utf8"),
        get exit() {
            return exit;
        },
        exited,
        async stop(graceMs = 5000) {
            if (exit !== undefined) return;
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
            await exited;
            clearTimeout(timer);
        },
    };
}

export interface WaitOptions {
    /** What is awaited, for the error message, e.g. "docker-registry to answer GET /v2/". */
    what: string;
    /** Defaults to 20 s. */
    timeoutMs?: number;
    /** Defaults to 50 ms. */
    intervalMs?: number;
    /** Fail at once, with its log, when this process exits while waiting. */
    process?: ManagedProcess;
}

/**
 * Polls `probe` until it returns true. Errors thrown by the probe count as "not yet"; the
 * last one is kept as the cause of the timeout error.
 */
export async function waitUntil(probe: () => Promise<boolean>, options: WaitOptions): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 20_000;
    const intervalMs = options.intervalMs ?? 50;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
        const proc = options.process;
        if (proc?.exit !== undefined) {
            const how = proc.exit.code === null ? `signal ${proc.exit.signal}` : `exit code ${proc.exit.code}`;
            throw new Error(
                `${proc.name} exited (${how}) while waiting for ${options.what}\n--- log ---\n${proc.log()}`,
            );
        }
        try {
            if (await probe()) return;
            lastError = undefined;
        } catch (e) {
            lastError = e;
        }
        if (Date.now() >= deadline) {
            const log = proc === undefined ? "" : `\n--- ${proc.name} log ---\n${proc.log()}`;
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${log}`, {
                cause: lastError,
            });
        }
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. For servers that cannot bind port 0 and
 * report the port back; there is a race with other processes, so callers retry on
 * "address already in use" (see `startWithFreePort`).
 */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            if (address === null || typeof address === "string") {
                server.close();
                reject(new Error("could not read the port of a probe server"));
                return;
            }
            server.close(() => resolve(address.port));
        });
    });
}

/** True when a failed start looks like a lost race for the port. */
export function isAddressInUse(error: unknown): boolean {
    for (let e: unknown = error; e instanceof Error; e = e.cause) {
        if (/address already in use|EADDRINUSE|Cannot bind any address/i.test(e.message)) return true;
    }
    return false;
}

/** Calls `start(port)` with fresh free ports until it does not fail with "address in use". */
export async function startWithFreePort<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
        const port = await freePort();
        try {
            return await start(port);
        } catch (e) {
            if (!isAddressInUse(e)) throw e;
            lastError = e;
        }
    }
    throw new Error(`no free port after ${attempts} attempts`, { cause: lastError });
}
