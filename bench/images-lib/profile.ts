/**
 * Summing up a V8 CPU profile (`node --cpu-prof`) of an engine run:
 * `node lib/bench/images-lib/profile.js DIR_OR_FILE [TOP]` prints where the samples fall, by
 * area (the engine, undici, node's own streams and crypto, garbage collection, idle) and by
 * function (self time).
 */

import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
    readonly id: number;
    readonly callFrame: {
        readonly functionName: string;
        readonly url: string;
        readonly lineNumber: number;
    };
    readonly children?: readonly number[];
}

interface CpuProfile {
    readonly nodes: readonly ProfileNode[];
    readonly startTime: number;
    readonly endTime: number;
    readonly samples: readonly number[];
    readonly timeDeltas: readonly number[];
}

function area(node: ProfileNode): string {
    const { functionName, url } = node.callFrame;
    if (functionName === "(idle)") return "idle (waiting for I/O)";
    if (functionName === "(garbage collector)") return "garbage collection";
    if (functionName === "(program)") return "V8/native (program)";
    if (url.includes("/provider/oci/")) return "engine (provider/oci)";
    if (url.includes("/provider/")) return "engine (other provider code)";
    if (url.includes("node_modules/undici")) return "undici (HTTP client)";
    if (url.includes("node_modules/")) return "other dependencies";
    if (url.startsWith("node:")) return `node internals (${url.split("/")[1] ?? url})`;
    return url === "" ? `native (${functionName || "anonymous"})` : "other";
}

export function summarize(profile: CpuProfile, top = 15): string {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    for (let i = 0; i < profile.samples.length; i++) {
        const id = profile.samples[i]!;
        selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
    const total = profile.endTime - profile.startTime;
    const areas = new Map<string, number>();
    const functions = new Map<string, number>();
    for (const [id, us] of selfUs) {
        const node = byId.get(id)!;
        const a = area(node);
        areas.set(a, (areas.get(a) ?? 0) + us);
        const { functionName, url, lineNumber } = node.callFrame;
        const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(lib|node_modules)\//, "$1/")}:${lineNumber + 1}`;
        functions.set(name, (functions.get(name) ?? 0) + us);
    }
    const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
    const lines = [`profile: ${(total / 1e6).toFixed(2)} s`, "by area (self time):"];
    for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) {
        lines.push(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${a}`);
    }
    lines.push(`top ${top} functions (self time):`);
    for (const [f, us] of [...functions].sort((x, y) => y[1] - x[1]).slice(0, top)) {
        lines.push(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${f}`);
    }
    return lines.join("\n");
}

async function main(argv: readonly string[]): Promise<void> {
    const [target, topArg] = argv;
    if (target === undefined) {
        throw new Error("usage: node lib/bench/images-lib/profile.js DIR_OR_FILE.cpuprofile [TOP]");
    }
    const files = (await stat(target)).isDirectory()
        ? (await readdir(target)).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(target, f))
        : [target];
    for (const f of files) {
        const profile = JSON.parse(await readFile(f, "utf8")) as CpuProfile;
        process.stdout.write(`${f}\n${summarize(profile, Number(topArg ?? 15))}\n`);
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((err: unknown) => {
        process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
    });
}
