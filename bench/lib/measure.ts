import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { type RunOptions, type RunResult, run } from "../../test/harness/servers/process";
import { makeTempDir } from "../../test/harness/tmp";

/**
 * Wall time and peak RSS of child processes. The wall time is taken here (milliseconds); the
 * peak RSS comes from GNU time's `%M`, which reports the largest resident set of the command and
 * the children it waited for (gpg, xz).
 */

const TIME = "/usr/bin/time";

/** One measured command, or the sum of several steps. */
export interface Measurement {
    wallMs: number;
    /** The largest peak RSS of the steps, in KiB. */
    maxRssKiB: number;
    /** Per step, for the details printed under the table. */
    steps: { label: string; wallMs: number; maxRssKiB: number }[];
}

export function checkTimeTool(): void {
    if (!existsSync(TIME)) {
        throw new Error(`${TIME} is missing: install Debian's "time" package (apt-get install time)`);
    }
}

let scratch: string | undefined;

/** Runs one command under GNU time. */
export async function measureCommand(
    label: string,
    cmd: string,
    args: readonly string[],
    options: RunOptions = {},
): Promise<{ result: RunResult; measurement: Measurement }> {
    scratch ??= await makeTempDir("bench-time");
    const out = join(scratch, "time.txt");
    await rm(out, { force: true });
    const started = process.hrtime.bigint();
    const result = await run(TIME, ["-f", "%e %M", "-o", out, cmd, ...args], { timeoutMs: 1_800_000, ...options });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const lines = (await readFile(out, "utf8")).trim().split("\n");
    // GNU time writes "Command exited with non-zero status N" before the format line on failure.
    const [, rss] = lines[lines.length - 1]!.split(" ");
    const maxRssKiB = Number(rss);
    return { result, measurement: { wallMs, maxRssKiB, steps: [{ label, wallMs, maxRssKiB }] } };
}

/** Adds steps up: wall times are summed, the peak RSS is the largest. */
export function combine(parts: readonly Measurement[]): Measurement {
    return {
        wallMs: parts.reduce((n, p) => n + p.wallMs, 0),
        maxRssKiB: Math.max(0, ...parts.map((p) => p.maxRssKiB)),
        steps: parts.flatMap((p) => p.steps),
    };
}

/** Formats rows as a Markdown table (the README takes it as printed). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (cells: readonly string[]) =>
        `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
    const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
    return [line(header), rule, ...rows.map(line)].join("\n");
}

export const seconds = (ms: number) => (ms / 1000).toFixed(2);
export const mebibytes = (kib: number) => (kib / 1024).toFixed(0);
export const ratio = (a: number, b: number) => (b === 0 ? "n/a" : (a / b).toFixed(3));
