/**
 * `pulumi preview --expect-no-changes` of a mirror, with the real CLI: a program directory of
 * the deployment repository the end-to-end suites install (`npm pack` of this package,
 * test/harness/program.ts), running their AptMirror program (test/e2e/programs.ts) with the
 * arguments as stack configuration and a lock file, on a local file backend with passphrase
 * secrets. `pulumi up` once, then previews with the lock unchanged.
 */
import { statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { AptMirrorArgs } from "../../sdk";
import { aptProgram } from "../../test/e2e/programs";
import { type CliResult, cliEnv, createProgramStack, type ProgramStack, pulumiBin } from "../../test/harness/program";
import { run } from "../../test/harness/servers/process";
import { makeTempDir } from "../../test/harness/tmp";

export interface PreviewOptions {
    source: AptMirrorArgs["source"];
    queries: string[];
    withDeps: boolean;
    prefix: string;
    signingKey: string;
    /** How many previews. */
    previews: number;
    /**
     * When set, one more preview (not counted) runs with `node --cpu-prof` for every node process
     * the CLI starts (the program, the dynamic provider), profiles written below this directory.
     */
    cpuProfDir?: string;
    log(line: string): void;
}

export interface PreviewResult {
    /** `pulumi stack init`, config, `npm pack` and install of the deployment repository. */
    setupMs: number;
    upMs: number;
    packageCount: number;
    previewMs: number[];
    /** The stack's checkpoint file (`.pulumi/stacks/<project>/<stack>.json`) after `up`. */
    stateBytes: number;
    lockBytes: number;
    /**
     * The same previews of a program in the same repository that only imports the SDK and
     * declares nothing: what the CLI, the language host and the TypeScript compile cost alone.
     */
    emptyPreviewMs: number[];
    /** The same previews of a program with one dynamic resource that does nothing. */
    trivialDynamicPreviewMs: number[];
    /** Where the profiled preview left its profiles. */
    profileDir?: string;
    /**
     * The same program without `export const packages = mirror.packages` (the lock's map as a
     * stack output, which the engine moves and stores on every run): `up` once more, then the
     * same number of previews, and the state file after it.
     */
    withoutPackagesOutput: { previewMs: number[]; stateBytes: number };
}

/** A TypeScript program of the deployment repository that loads the package and declares nothing. */
const emptyProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror } from "pulumi-airgap";

export const loaded = typeof AptMirror === "function" && pulumi.getStack() !== "";
`;

/**
 * The same, plus one dynamic resource whose provider does nothing: the floor of any program with
 * a dynamic resource (the CLI starts Pulumi's dynamic-provider host, the program serializes the
 * provider, the engine checks and diffs the resource).
 */
const trivialDynamicProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror } from "pulumi-airgap";

const provider: pulumi.dynamic.ResourceProvider = {
    async create() {
        return { id: "trivial", outs: {} };
    },
};
class Trivial extends pulumi.dynamic.Resource {
    constructor(name: string) {
        super(provider, name, {});
    }
}
export const id = new Trivial("trivial").id;
export const loaded = typeof AptMirror === "function";
`;

const failed = (what: string, r: CliResult) =>
    new Error(`${what} exited with ${r.code}\n${r.stdout.slice(-4000)}${r.stderr.slice(-4000)}`);

export async function measurePreview(options: PreviewOptions): Promise<PreviewResult> {
    const work = await makeTempDir("bench-preview");
    const root = join(work, "root");
    await mkdir(root);
    const lockFile = join(work, "mirror.lock.json");
    const args: AptMirrorArgs = {
        source: options.source,
        packages: options.queries,
        withDeps: options.withDeps,
        publish: { root, prefix: options.prefix },
        lockFile,
    };
    const setupStart = performance.now();
    const stack = await createProgramStack("benchmirror", {
        source: aptProgram,
        config: () => ({ args: JSON.stringify(args), signingKey: { secret: options.signingKey } }),
    });
    try {
        // `cli` sets the stack configuration first: done here, so that it counts as set-up.
        const configured = await stack.cli(["config", "get", "args"]);
        if (configured.code !== 0) throw failed("pulumi config get", configured);
        const setupMs = performance.now() - setupStart;
        options.log(`  preview: deployment repository and stack ready in ${(setupMs / 1000).toFixed(1)} s`);

        const up = await stack.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 3_600_000 });
        if (up.code !== 0) throw failed("pulumi up", up);
        const outputs = await stack.outputs();
        const packageCount = Number(outputs.count);
        options.log(`  preview: pulumi up ${(up.elapsedMs / 1000).toFixed(2)} s, ${packageCount} packages`);

        const previewMs = await timedPreviews(
            stack,
            options,
            "",
            (i) => `preview ${i}: pulumi preview --expect-no-changes`,
        );
        const stateBytes = stack.stateBytes().length;
        let profileDir: string | undefined;
        if (options.cpuProfDir !== undefined) {
            profileDir = join(options.cpuProfDir, "preview");
            // The stack's own environment, plus a profiler for every node process under the CLI
            // (node refuses --cpu-prof in NODE_OPTIONS; a preload starts the inspector's instead).
            await mkdir(profileDir, { recursive: true });
            const env = cliEnv(stack.stateDir, {
                NODE_OPTIONS: `--require ${join(__dirname, "cpu-prof-preload.js")}`,
                AIRGAP_CPU_PROF_DIR: profileDir,
            });
            const started = performance.now();
            const profiled = await run(pulumiBin, ["preview", "--expect-no-changes", "--non-interactive"], {
                cwd: stack.dir,
                env,
                check: false,
                timeoutMs: 600_000,
            });
            options.log(
                `  profiled preview (not counted): exit ${profiled.code}, ${((performance.now() - started) / 1000).toFixed(2)} s` +
                    (profiled.code === 0 ? "" : `\n${profiled.stdout.slice(-2000)}${profiled.stderr.slice(-2000)}`),
            );
        }
        const withoutPackagesOutput = await previewWithoutPackagesOutput(stack, options);
        const emptyPreviewMs = await previewFloor(options, "benchempty", emptyProgram, "empty program");
        const trivialDynamicPreviewMs = await previewFloor(
            options,
            "benchtrivial",
            trivialDynamicProgram,
            "one dynamic resource that does nothing",
        );
        return {
            ...(profileDir === undefined ? {} : { profileDir }),
            emptyPreviewMs,
            trivialDynamicPreviewMs,
            setupMs,
            upMs: up.elapsedMs,
            packageCount,
            previewMs,
            stateBytes,
            lockBytes: statSync(lockFile).size,
            withoutPackagesOutput,
        };
    } finally {
        await stack.dispose();
    }
}

/**
 * The program without its `packages` stack output: the mirror alone. Rewrites index.ts in the
 * stack's directory, runs `up` (the stack output goes; the mirror is unchanged), then previews.
 */
async function previewWithoutPackagesOutput(
    stack: ProgramStack,
    options: PreviewOptions,
): Promise<{ previewMs: number[]; stateBytes: number }> {
    const exported = "export const packages = mirror.packages;\n";
    if (!aptProgram.includes(exported)) throw new Error("the program no longer exports packages as written here");
    writeFileSync(join(stack.dir, "index.ts"), aptProgram.replace(exported, ""));
    const up = await stack.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 3_600_000 });
    if (up.code !== 0) throw failed("pulumi up without the packages output", up);
    const previewMs = await timedPreviews(
        stack,
        options,
        " without the packages output",
        (i) => `without the packages stack output, preview ${i}:`,
    );
    return { previewMs, stateBytes: stack.stateBytes().length };
}

/**
 * `options.previews` runs of `pulumi preview --expect-no-changes`, each logged as
 * `<label(i)> <seconds> s`; a preview that fails (a change, an error) fails the measurement.
 */
async function timedPreviews(
    stack: ProgramStack,
    options: PreviewOptions,
    what: string,
    label: (i: number) => string,
): Promise<number[]> {
    const times: number[] = [];
    for (let i = 1; i <= options.previews; i++) {
        const preview = await stack.cli(["preview", "--expect-no-changes", "--non-interactive"]);
        if (preview.code !== 0) throw failed(`pulumi preview --expect-no-changes${what}`, preview);
        times.push(preview.elapsedMs);
        options.log(`  ${label(i)} ${(preview.elapsedMs / 1000).toFixed(2)} s`);
    }
    return times;
}

/** Previews of a program in the same repository that sets a floor (`up` first, not counted). */
async function previewFloor(options: PreviewOptions, name: string, source: string, what: string): Promise<number[]> {
    const stack = await createProgramStack(name, { source });
    try {
        const up = await stack.cli(["up", "--yes", "--skip-preview", "--non-interactive"]);
        if (up.code !== 0) throw failed(`pulumi up of the ${what}`, up);
        return await timedPreviews(stack, options, ` of the ${what}`, (i) => `${what}, preview ${i}:`);
    } finally {
        await stack.dispose();
    }
}
