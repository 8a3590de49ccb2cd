/**
 * Timing child processes the same way for every contender: each command runs under GNU
 * `/usr/bin/time -f '%e %M %U %S'`, which reports the child's elapsed seconds, peak resident set
 * (KiB) and CPU seconds to a file of its own, so the child's stderr stays the child's.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export const TIME_BIN = "/usr/bin/time";

export interface Timed {
    /** Wall time as seen from here (spawn to exit), milliseconds. */
    readonly wallMs: number;
    /** Peak RSS of the child, KiB (GNU time `%M`). */
    readonly maxRssKiB: number;
    /** User + system CPU time of the child, milliseconds (GNU time `%U` + `%S`). */
    readonly cpuMs: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Several runs taken as one: times add up, the peak RSS is the largest. */
export interface TimedTotal {
    readonly wallMs: number;
    readonly maxRssKiB: number;
    readonly cpuMs: number;
    readonly runs: number;
}

export function checkTimeTool(): void {
    if (!existsSync(TIME_BIN)) {
        throw new Error(`${TIME_BIN} is missing: install the Debian package "time" (apt-get install time)`);
    }
}

/** Runs `cmd args` under GNU time; throws with its output when it fails. */
export async function timed(
    cmd: string,
    args: readonly string[],
    options: { readonly scratchDir: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number },
): Promise<Timed> {
    const report = join(options.scratchDir, `time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
    const started = process.hrtime.bigint();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
        (resolve, reject) => {
            const child = spawn(TIME_BIN, ["-f", "%e %M %U %S", "-o", report, cmd, ...args], {
                env: options.env ?? process.env,
                stdio: ["ignore", "pipe", "pipe"],
            });
            const out: Buffer[] = [];
            const err: Buffer[] = [];
            child.stdout.on("data", (b: Buffer) => out.push(b));
            child.stderr.on("data", (b: Buffer) => err.push(b));
            const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
            child.on("error", (cause) => {
                clearTimeout(timer);
                reject(new Error(`starting ${cmd}`, { cause }));
            });
            child.on("close", (exitCode) => {
                clearTimeout(timer);
                resolve({
                    code: exitCode,
                    stdout: Buffer.concat(out).toString("utf8"),
                    stderr: Buffer.concat(err).toString("utf8"),
                });
            });
        },
    );
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const text = await readFile(report, "utf8").catch(() => "");
    await rm(report, { force: true });
    if (code !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} exited with ${code}:\n${stderr.slice(-4000)}`);
    }
    // GNU time writes "Command exited with non-zero status" first on failure; the last line is ours.
    const last = text.trim().split("\n").pop() ?? "";
    const match = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(last);
    if (match === null) {
        throw new Error(`cannot read ${TIME_BIN} output "${text}" for ${cmd}`);
    }
    return {
        wallMs,
        maxRssKiB: Number(match[2]),
        cpuMs: (Number(match[3]) + Number(match[4])) * 1000,
        stdout,
        stderr,
    };
}

/** Runs the commands one after another (as a seed script's loop does). */
export async function timedSequence(
    commands: readonly { readonly cmd: string; readonly args: readonly string[] }[],
    options: { readonly scratchDir: string; readonly env?: NodeJS.ProcessEnv },
): Promise<TimedTotal> {
    const started = process.hrtime.bigint();
    let maxRssKiB = 0;
    let cpuMs = 0;
    for (const c of commands) {
        const t = await timed(c.cmd, c.args, options);
        maxRssKiB = Math.max(maxRssKiB, t.maxRssKiB);
        cpuMs += t.cpuMs;
    }
    return { wallMs: Number(process.hrtime.bigint() - started) / 1e6, maxRssKiB, cpuMs, runs: commands.length };
}

/** Runs `task` with at most `limit` at a time. */
export async function inParallel<T, R>(
    items: readonly T[],
    limit: number,
    task: (item: T) => Promise<R>,
): Promise<R[]> {
    const results: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            results[i] = await task(items[i]!);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}

/** The pid of the running process whose command line has `arg` among its arguments. */
export async function findPid(arg: string): Promise<number | undefined> {
    for (const entry of await readdir("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
        if (cmdline.split("\0").includes(arg)) {
            return Number(entry);
        }
    }
    return undefined;
}

/** User + system CPU time a running process has used so far, milliseconds (0 when it is gone). */
export async function processCpuMs(pid: number): Promise<number> {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Linux reports them in clock ticks, which are 1/100 s on every supported architecture.
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
}
