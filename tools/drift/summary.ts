/**
 * Reads what `pulumi preview --refresh --expect-no-changes --json` prints and says, per
 * resource, what drifted: files edited on a host, mirror files altered (what the resources'
 * refresh reports in their `drift` output), packages or images whose version or digest moved
 * upstream (the lock inputs changed), and the program's own changes.
 *
 * Pure: JSON in, a report out. The command (main.ts) runs the CLI.
 */

import { parseLock } from "../../provider/apt/lock_text";

/** Why a resource is listed. */
export type DriftCause = "site" | "upstream" | "program";

export interface ResourceDrift {
    urn: string;
    /** Short type, e.g. "HostMirrorConfig". */
    type: string;
    name: string;
    /** What the preview would do: "update", "replace", "create", "delete", or "refresh" alone. */
    op: string;
    causes: DriftCause[];
    /** One line per finding, e.g. `host file etc/x.conf edited`. */
    findings: string[];
}

export interface DriftReport {
    /** "clean" → exit 0, "drift" → 1, "error" → 2. */
    status: "clean" | "drift" | "error";
    resources: ResourceDrift[];
    /** Error diagnostics of the preview (the program failed, upstream unreachable, …). */
    errors: string[];
}

interface StateJson {
    urn?: string;
    type?: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
}

interface StepJson {
    op?: string;
    urn?: string;
    oldState?: StateJson;
    newState?: StateJson;
    diffReasons?: string[];
}

export interface PreviewJson {
    steps?: StepJson[];
    diagnostics?: { message?: string; severity?: string; urn?: string }[];
    changeSummary?: Record<string, number>;
}

export const EXIT_CODES = { clean: 0, drift: 1, error: 2 } as const;

/** Inputs that hold a lock: key → version or digest. A change there means upstream moved. */
const LOCK_INPUTS: Record<string, string> = {
    packages: "package",
    images: "image",
    external: "dependency",
    content: "content",
};

/** Lock inputs the program passes as text, a `name/arch version` line each (AptMirror). */
const TEXT_LOCKS = new Set(["packages", "external"]);

/** Scalar inputs that follow upstream: the upstream Release date of an APT lock. */
const UPSTREAM_SCALARS: Record<string, string> = { upstreamDate: "upstream Release date" };

/** Inputs and outputs that say nothing to a person. */
const IGNORED = new Set(["__provider", "__inputs"]);

/** Steps that change nothing. */
const NO_CHANGE = new Set(["same", "read", "refresh", "discard", "remove-pending-replace"]);

function shortType(urn: string): { type: string; name: string } {
    const parts = urn.split("::");
    const name = parts[parts.length - 1] ?? urn;
    const qualified = parts[parts.length - 2] ?? "";
    const type = qualified.slice(qualified.lastIndexOf("$") + 1);
    return { type: type.slice(type.lastIndexOf(":") + 1) || type, name };
}

function isInfrastructure(urn: string): boolean {
    const { type } = shortType(urn);
    const qualified = urn.split("::").slice(-2, -1)[0] ?? "";
    return type === "Stack" || qualified.includes("pulumi:providers:") || qualified.startsWith("pulumi:pulumi:");
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function same(a: unknown, b: unknown): boolean {
    return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
    if (Array.isArray(v)) {
        return v.map(canonical);
    }
    if (isRecord(v)) {
        return Object.fromEntries(
            Object.keys(v)
                .filter((k) => !IGNORED.has(k))
                .sort()
                .map((k) => [k, canonical(v[k])]),
        );
    }
    return v;
}

function shortHash(h: string): string {
    return /^[0-9a-f]{64}$/.test(h) ? `${h.slice(0, 12)}…` : h;
}

/** A lock input as a map: a map, or an APT lock's text (`name/arch version` lines). */
function lockEntries(value: unknown): Record<string, unknown> {
    if (isRecord(value)) {
        return value;
    }
    if (typeof value === "string") {
        try {
            return parseLock(value);
        } catch {
            return {};
        }
    }
    return {};
}

/** `key old → new`, `key new (added)`, `key old (removed)` for each entry of two locks. */
function lockChanges(noun: string, before: unknown, after: unknown): string[] {
    const a = lockEntries(before);
    const b = lockEntries(after);
    const lines: string[] = [];
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        const was = a[key];
        const now = b[key];
        if (same(was, now)) {
            continue;
        }
        if (was === undefined) {
            lines.push(`${noun} ${key} ${String(now)} added`);
        } else if (now === undefined) {
            lines.push(`${noun} ${key} ${String(was)} removed`);
        } else {
            lines.push(`${noun} ${key} ${String(was)} → ${String(now)}`);
        }
    }
    return lines;
}

/** What a refresh found: the state before it against what the provider read. */
function refreshFindings(oldOut: Record<string, unknown>, newOut: Record<string, unknown>): string[] {
    const findings: string[] = [];
    const drift = newOut.drift;
    if (Array.isArray(drift)) {
        for (const d of drift) {
            findings.push(String(d));
        }
    }
    if (isRecord(oldOut.files) || isRecord(newOut.files)) {
        const was = isRecord(oldOut.files) ? oldOut.files : {};
        const now = isRecord(newOut.files) ? newOut.files : {};
        for (const file of [...new Set([...Object.keys(was), ...Object.keys(now)])].sort()) {
            if (same(was[file], now[file])) {
                continue;
            }
            if (now[file] === "" || now[file] === undefined) {
                findings.push(`host file ${file} removed`);
            } else {
                findings.push(
                    `host file ${file} edited (sha256 ${shortHash(String(was[file]))} → ${shortHash(String(now[file]))})`,
                );
            }
        }
    }
    if (findings.length === 0) {
        const changed = [...new Set([...Object.keys(oldOut), ...Object.keys(newOut)])]
            .filter((k) => !IGNORED.has(k) && k !== "drift" && !same(oldOut[k], newOut[k]))
            .sort();
        if (changed.length > 0) {
            findings.push(`changed outside the program: ${changed.join(", ")}`);
        }
    }
    return findings;
}

/**
 * The report of one preview. Refresh steps give what the site looks like now (site drift);
 * the steps that follow give what `up` would change: lock inputs that moved are upstream
 * drift, other inputs the program's own changes.
 */
export function summarizePreview(preview: PreviewJson): DriftReport {
    const errors = (preview.diagnostics ?? [])
        .filter((d) => d.severity === "error")
        .map((d) => (d.message ?? "").trim().replace(/^error: /, ""))
        .filter((m) => m !== "");
    const byUrn = new Map<string, ResourceDrift>();
    const entry = (urn: string): ResourceDrift => {
        let r = byUrn.get(urn);
        if (r === undefined) {
            r = { urn, ...shortType(urn), op: "refresh", causes: [], findings: [] };
            byUrn.set(urn, r);
        }
        return r;
    };
    const add = (r: ResourceDrift, cause: DriftCause, findings: string[]) => {
        if (findings.length === 0) {
            return;
        }
        if (!r.causes.includes(cause)) {
            r.causes.push(cause);
        }
        for (const f of findings) {
            if (!r.findings.includes(f)) {
                r.findings.push(f);
            }
        }
    };
    // Outputs before the refresh, per resource. The CLI's refresh steps carry the state before
    // the refresh in both oldState and newState; the steps that follow carry the refreshed state
    // as their oldState.
    const beforeRefresh = new Map<string, Record<string, unknown>>();
    for (const step of preview.steps ?? []) {
        const urn = step.urn ?? step.newState?.urn ?? step.oldState?.urn;
        if (urn === undefined || isInfrastructure(urn)) {
            continue;
        }
        const op = step.op ?? "";
        if (op === "refresh") {
            const oldOut = step.oldState?.outputs ?? {};
            beforeRefresh.set(urn, oldOut);
            const newOut = step.newState?.outputs;
            if (newOut === undefined) {
                add(entry(urn), "site", ["gone: the resource no longer exists"]);
            } else {
                add(entry(urn), "site", refreshFindings(oldOut, newOut));
            }
            continue;
        }
        const before = beforeRefresh.get(urn);
        const refreshed = step.oldState?.outputs;
        if (before !== undefined && refreshed !== undefined) {
            add(entry(urn), "site", refreshFindings(before, refreshed));
        }
        if (NO_CHANGE.has(op)) {
            continue;
        }
        const r = entry(urn);
        r.op = op === "create-replacement" || op === "delete-replaced" ? "replace" : op;
        if (op === "create") {
            add(r, "program", ["not created yet"]);
            continue;
        }
        if (op === "delete" || op === "delete-replaced") {
            if (op === "delete") {
                add(r, "program", ["no longer in the program: would be deleted"]);
            }
            continue;
        }
        const oldIn = step.oldState?.inputs ?? {};
        const newIn = step.newState?.inputs ?? {};
        const upstream: string[] = [];
        const program: string[] = [];
        for (const key of [...new Set([...Object.keys(oldIn), ...Object.keys(newIn)])].sort()) {
            if (IGNORED.has(key) || same(oldIn[key], newIn[key])) {
                continue;
            }
            const noun = LOCK_INPUTS[key];
            const lockLike = (v: unknown) => isRecord(v) || (TEXT_LOCKS.has(key) && typeof v === "string");
            if (noun !== undefined && (lockLike(oldIn[key]) || lockLike(newIn[key]))) {
                upstream.push(...lockChanges(noun, oldIn[key], newIn[key]));
            } else if (UPSTREAM_SCALARS[key] !== undefined) {
                upstream.push(`${UPSTREAM_SCALARS[key]} ${String(oldIn[key])} → ${String(newIn[key])}`);
            } else {
                program.push(`input ${key} changed`);
            }
        }
        add(r, "upstream", upstream);
        add(r, "program", program);
        if (r.findings.length === 0) {
            // The provider wants to change it although no input moved: what refresh found.
            add(r, "site", [`would ${r.op}${step.diffReasons?.length ? ` (${step.diffReasons.join(", ")})` : ""}`]);
        }
    }
    const resources = [...byUrn.values()].filter((r) => r.findings.length > 0);
    const status = errors.length > 0 ? "error" : resources.length > 0 ? "drift" : "clean";
    return { status, resources, errors };
}

const CAUSE_TEXT: Record<DriftCause, string> = {
    site: "site drifted",
    upstream: "upstream moved",
    program: "program changed",
};

/** The report as people read it in a pipeline log. */
export function formatReport(report: DriftReport, stack?: string): string {
    const where = stack === undefined ? "" : ` (stack ${stack})`;
    if (report.status === "error") {
        return [`error${where}: the preview failed; this is not drift`, ...report.errors.map((e) => `  ${e}`), ""].join(
            "\n",
        );
    }
    if (report.status === "clean") {
        return `no drift${where}\n`;
    }
    const lines = [`drift${where}: ${report.resources.length} resource(s)`];
    for (const r of report.resources) {
        lines.push(`${r.type} "${r.name}": ${r.causes.map((c) => CAUSE_TEXT[c]).join(", ")} (${r.op})`);
        for (const f of r.findings) {
            lines.push(`  ${f}`);
        }
    }
    return `${lines.join("\n")}\n`;
}
