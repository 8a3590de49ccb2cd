import { readFileSync } from "node:fs";

/**
 * Where the time of a `node --cpu-prof` profile goes: self time by area (a file of this project,
 * a package under node_modules, node's internals, the garbage collector, idle), and each sample
 * charged to the nearest function of the engine on its stack (so that a `read` or a hash update
 * shows up under the engine function that asked for it).
 */

interface ProfileNode {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
}

interface CpuProfile {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
}

export interface ProfileSummary {
    totalMs: number;
    byArea: { name: string; ms: number }[];
    /** By the nearest frame of `provider/` on the stack; samples without one by their area. */
    byEngineFunction: { name: string; ms: number }[];
}

function areaOf(url: string, functionName: string): string {
    if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
    // This package as a deployment repository installs it counts as our own code.
    const installed = /node_modules\/pulumi-airgap\/lib\/((?:provider|sdk)\/.*)$/.exec(url);
    if (installed !== null) return installed[1]!;
    const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (modules !== null) return modules[1]!;
    if (url.startsWith("node:")) return "node internals";
    const own = /\/lib\/((?:provider|sdk|bench|test)\/.*)$/.exec(url);
    return own === null ? url : own[1]!;
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const self = new Map<number, number>();
    for (const [i, id] of profile.samples.entries()) {
        self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
    const engineFrame = (id: number): string | undefined => {
        for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
            const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
            const area = areaOf(url, functionName);
            if (area.startsWith("provider/")) return `${functionName || "(anonymous)"} ${area}:${lineNumber + 1}`;
        }
        return undefined;
    };
    const areas = new Map<string, number>();
    const functions = new Map<string, number>();
    let total = 0;
    for (const [id, us] of self) {
        const { functionName, url } = byId.get(id)!.callFrame;
        const area = areaOf(url, functionName);
        const fn = engineFrame(id) ?? `[no engine frame] ${area}`;
        areas.set(area, (areas.get(area) ?? 0) + us);
        functions.set(fn, (functions.get(fn) ?? 0) + us);
        total += us;
    }
    const sorted = (m: Map<string, number>) =>
        [...m]
            .sort((a, b) => b[1] - a[1])
            .slice(0, top)
            .map(([name, us]) => ({ name, ms: us / 1000 }));
    return { totalMs: total / 1000, byArea: sorted(areas), byEngineFunction: sorted(functions) };
}
