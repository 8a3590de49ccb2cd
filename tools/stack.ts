/**
 * Runs a Pulumi program against the real Pulumi CLI on a local file backend with passphrase
 * secrets, through the Automation API. Used by `npm run main` and by the end-to-end tests.
 *
 * The program runs inline (in this process); the CLI, the engine, the state backend and the
 * dynamic-provider plugin are the real ones. Nothing touches the user's ~/.pulumi: PULUMI_HOME,
 * the backend and the secrets all live under the directories given here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineEvent, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";

/** The root of this package (where package.json and .tools/ are). */
export const packageRoot = path.resolve(__dirname, "..", "..");

export interface LocalStackOptions {
    /** The workspace directory: Pulumi.yaml and stack settings are written here. */
    workDir: string;
    projectName: string;
    /** Defaults to "dev". */
    stackName?: string;
    program: PulumiFn;
    /** Directory of the file backend (created when missing). */
    stateDir: string;
    /** Passphrase of the stack's secrets provider. */
    passphrase: string;
    /** Where `bin/pulumi` is. Defaults to `<package root>/.tools`. */
    toolsRoot?: string;
    /** PULUMI_HOME. Defaults to `<stateDir>/.pulumi-home`. */
    pulumiHome?: string;
    /** Stack configuration, `key: value` (plain text). */
    config?: Record<string, string>;
    /** Extra environment for the CLI and the plugins it starts. */
    env?: Record<string, string>;
    /** Use the Pulumi.yaml already in `workDir` instead of writing one. */
    existingProject?: boolean;
}

/**
 * Makes `require("@pulumi/pulumi/...")` and `require("pulumi-airgap/...")` resolve from `workDir`.
 * The dynamic-provider plugin runs with the workspace as its working directory and loads the
 * serialized provider code from there (DESIGN decision 1).
 */
export function linkPackages(workDir: string): void {
    const modules = path.join(workDir, "node_modules");
    fs.mkdirSync(modules, { recursive: true });
    const links: [string, string][] = [
        ["@pulumi", path.join(packageRoot, "node_modules", "@pulumi")],
        ["pulumi-airgap", packageRoot],
    ];
    for (const [name, target] of links) {
        const at = path.join(modules, name);
        if (path.resolve(at) === path.resolve(target) || fs.existsSync(at)) {
            continue;
        }
        fs.symlinkSync(target, at, "dir");
    }
}

export function pulumiEnv(
    opts: Pick<LocalStackOptions, "stateDir" | "passphrase" | "toolsRoot" | "pulumiHome" | "env">,
) {
    const tools = opts.toolsRoot ?? path.join(packageRoot, ".tools");
    return {
        PULUMI_BACKEND_URL: `file://${path.resolve(opts.stateDir)}`,
        PULUMI_CONFIG_PASSPHRASE: opts.passphrase,
        PULUMI_HOME: opts.pulumiHome ?? path.join(path.resolve(opts.stateDir), ".pulumi-home"),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "false",
        PATH: `${path.join(tools, "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
        ...opts.env,
    };
}

/** Creates or selects the stack; the CLI is the one under `toolsRoot`. */
export async function openLocalStack(opts: LocalStackOptions): Promise<Stack> {
    const tools = opts.toolsRoot ?? path.join(packageRoot, ".tools");
    if (!fs.existsSync(path.join(tools, "bin", "pulumi"))) {
        throw new Error(`no Pulumi CLI at ${tools}/bin/pulumi: run scripts/install-pulumi.sh first`);
    }
    fs.mkdirSync(opts.stateDir, { recursive: true });
    fs.mkdirSync(opts.workDir, { recursive: true });
    linkPackages(opts.workDir);
    const envVars = pulumiEnv(opts);
    fs.mkdirSync(envVars.PULUMI_HOME, { recursive: true });
    const pulumiCommand = await PulumiCommand.get({ root: tools });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: opts.stackName ?? "dev", projectName: opts.projectName, program: opts.program },
        {
            workDir: opts.workDir,
            pulumiHome: envVars.PULUMI_HOME,
            pulumiCommand,
            envVars,
            projectSettings: opts.existingProject
                ? undefined
                : { name: opts.projectName, runtime: "nodejs", backend: { url: envVars.PULUMI_BACKEND_URL } },
            secretsProvider: "passphrase",
        },
    );
    for (const [key, value] of Object.entries(opts.config ?? {})) {
        await stack.setConfig(key, { value });
    }
    return stack;
}

/** What an operation did to one resource, from the engine's event stream. */
export interface ResourceStep {
    op: string;
    urn: string;
    type: string;
    /** Top-level input properties the engine reported as changed. */
    diffs: string[];
    /** Property paths with their kind of change (add, delete, update, ...). */
    detailedDiff: Record<string, string>;
}

/** Collects resource steps from engine events (pass `collector.onEvent` as the `onEvent` option). */
export function stepCollector() {
    const steps: ResourceStep[] = [];
    return {
        steps,
        onEvent(event: EngineEvent) {
            const meta = event.resourcePreEvent?.metadata ?? event.resOutputsEvent?.metadata;
            if (!event.resourcePreEvent || !meta) {
                return;
            }
            const detailed: Record<string, string> = {};
            for (const [k, v] of Object.entries(meta.detailedDiff ?? {})) {
                detailed[k] = String((v as { kind?: unknown }).kind ?? "");
            }
            steps.push({
                op: meta.op,
                urn: meta.urn,
                type: meta.type,
                diffs: meta.diffs ?? [],
                detailedDiff: detailed,
            });
        },
    };
}
