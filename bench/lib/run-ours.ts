/**
 * One sync by this project's APT engine, as `pulumi up` runs it, in two processes so that the
 * wall time and peak RSS of each can be measured from outside:
 *
 *     node lib/bench/lib/run-ours.js resolve CONFIG.json   # the program: resolveProgramLock, as the SDK calls it
 *     node lib/bench/lib/run-ours.js up CONFIG.json        # the provider: check, then create or update
 *
 * `up` goes through the dynamic provider the SDK registers (`providerUp`, bench/lib/provider-path.ts),
 * so `syncMirror` gets exactly the options the provider passes: nothing handed over from the
 * program's process (the provider reads the verified indexes from the index cache the program
 * filled, as in a real run). CONFIG is a `RunOursConfig`. Prints one line of JSON
 * (`RunOursResult`) on stdout; progress lines go to stderr as in `pulumi up`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { lockText } from "../../provider/apt/lock_text";
import { type AptSourceSpec, resolveProgramLock } from "../../provider/apt/mirror";
import type { AptMirrorInputs, AptMirrorOutputs } from "../../provider/apt/operations";
import { APT_ENGINE, type Deployed, providerUp } from "./provider-path";

export interface RunOursConfig {
    source: AptSourceSpec;
    /** aptly queries, OR'ed. */
    queries: string[];
    withDeps: boolean;
    publish: { root: string; prefix: string };
    signing: { privateKey: string };
    /** Where `resolve` leaves the resource's inputs for `up`. */
    inputsPath: string;
    /** Where `up` keeps the resource's state between runs: absent = create, present = update. */
    statePath: string;
}

export interface RunOursResult {
    phase: "resolve" | "up";
    /** Inside the process: resolveProgramLock, or the provider's check + create/update. */
    ms: number;
    packageCount: number;
    publishedPath?: string;
}

async function resolvePhase(config: RunOursConfig): Promise<RunOursResult> {
    mkdirSync(config.publish.root, { recursive: true });
    const t0 = performance.now();
    const lock = await resolveProgramLock({
        source: config.source,
        queries: config.queries,
        withDeps: config.withDeps,
        publish: config.publish,
        dryRun: false,
    });
    const ms = performance.now() - t0;
    // As the SDK passes them (sdk/aptMirror.ts): the lock as text.
    const inputs: AptMirrorInputs = {
        source: config.source,
        packages: lockText(lock.packages),
        publish: config.publish,
        signing: config.signing,
        ...(lock.upstreamDate === undefined ? {} : { upstreamDate: lock.upstreamDate }),
    };
    writeFileSync(config.inputsPath, JSON.stringify(inputs));
    return { phase: "resolve", ms, packageCount: Object.keys(lock.packages).length };
}

async function upPhase(config: RunOursConfig): Promise<RunOursResult> {
    const inputs = JSON.parse(readFileSync(config.inputsPath, "utf8")) as AptMirrorInputs;
    const previous = existsSync(config.statePath)
        ? (JSON.parse(readFileSync(config.statePath, "utf8")) as Deployed<AptMirrorOutputs>)
        : undefined;
    const t0 = performance.now();
    const deployed = await providerUp<AptMirrorInputs, AptMirrorOutputs>(APT_ENGINE, inputs, previous);
    const ms = performance.now() - t0;
    writeFileSync(config.statePath, JSON.stringify(deployed));
    return {
        phase: "up",
        ms,
        packageCount: deployed.outs.packageCount,
        publishedPath: deployed.outs.publishedPath,
    };
}

async function main(phase: string | undefined, configPath: string | undefined): Promise<void> {
    if ((phase !== "resolve" && phase !== "up") || configPath === undefined) {
        process.stderr.write("usage: node lib/bench/lib/run-ours.js resolve|up CONFIG.json\n");
        process.exit(2);
    }
    const config = JSON.parse(readFileSync(configPath, "utf8")) as RunOursConfig;
    const result = phase === "resolve" ? await resolvePhase(config) : await upPhase(config);
    process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
    main(process.argv[2], process.argv[3]).catch((err: unknown) => {
        process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        if (err instanceof Error && err.cause !== undefined) process.stderr.write(`cause: ${String(err.cause)}\n`);
        process.exit(1);
    });
}
