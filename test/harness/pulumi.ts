import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { openLocalStack, type ResourceStep, stepCollector } from "../../tools/stack";

export interface TestStack {
    readonly dir: string;
    readonly stack: Stack;
    /** `pulumi up`; returns the resource steps and the stack outputs (plain values). */
    up(): Promise<{ steps: ResourceStep[]; outputs: Record<string, unknown>; changes: Record<string, number> }>;
    /** `pulumi preview --diff`; with `expectNoChanges` the CLI itself fails on any change. */
    preview(opts?: { expectNoChanges?: boolean }): Promise<{ steps: ResourceStep[]; changes: Record<string, number> }>;
    /** `pulumi refresh`; `changes.update` counts resources whose state differed from reality. */
    refresh(): Promise<{ changes: Record<string, number> }>;
    destroy(): Promise<{ changes: Record<string, number> }>;
    /** Output of the last operation (for failure messages). */
    lastOutput(): string;
    /** Removes the stack and the temp dir. */
    dispose(): Promise<void>;
}

const plain = (outputs: Record<string, { value: unknown }>) =>
    Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]));

/** Creates a project named `name` running `program` inline. */
export async function createTestStack(name: string, program: PulumiFn): Promise<TestStack> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `airgap-e2e-${name}-`));
    const stack = await openLocalStack({
        workDir: path.join(dir, "project"),
        stateDir: path.join(dir, "state"),
        projectName: name,
        stackName: "test",
        passphrase: "test-passphrase",
        program,
    });
    let output = "";
    const onOutput = (s: string) => {
        output += s;
    };
    const run = async <T>(f: () => Promise<T>): Promise<T> => {
        output = "";
        try {
            return await f();
        } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            throw new Error(`${message}\n--- pulumi output ---\n${output}`, { cause: err });
        }
    };
    return {
        dir,
        stack,
        async up() {
            const c = stepCollector();
            const r = await run(() => stack.up({ onOutput, onEvent: c.onEvent, diff: true }));
            return { steps: c.steps, outputs: plain(r.outputs), changes: r.summary.resourceChanges ?? {} };
        },
        async preview(opts = {}) {
            const c = stepCollector();
            const r = await run(() =>
                stack.preview({ onOutput, onEvent: c.onEvent, diff: true, expectNoChanges: opts.expectNoChanges }),
            );
            return { steps: c.steps, changes: r.changeSummary as Record<string, number> };
        },
        async refresh() {
            const r = await run(() => stack.refresh({ onOutput }));
            return { changes: r.summary.resourceChanges ?? {} };
        },
        async destroy() {
            const r = await run(() => stack.destroy({ onOutput }));
            return { changes: r.summary.resourceChanges ?? {} };
        },
        lastOutput: () => output,
        async dispose() {
            try {
                await stack.workspace.removeStack(stack.name, { force: true });
            } finally {
                if (process.env.KEEP_TMP !== "1") {
                    fs.rmSync(dir, { recursive: true, force: true });
                }
            }
        },
    };
}

/** The stack's state files (under the test's file backend) whose text contains any of `needles`. */
export function stateFilesContaining(t: TestStack, needles: readonly string[]): string[] {
    const hits: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) {
                walk(p);
            } else if (e.name.endsWith(".json") && needles.some((n) => fs.readFileSync(p, "utf8").includes(n))) {
                hits.push(p);
            }
        }
    };
    walk(path.join(t.dir, "state"));
    return hits;
}
