/**
 * The engine's side of the benchmark, run as a child process (so its wall time and peak RSS are
 * measured exactly like skopeo's): `node lib/bench/images-lib/ours.js JOB.json RESULT.json`.
 *
 * It runs what `pulumi up` runs for an ImageMirror: the dynamic provider's `check` then `create`
 * (or `update` with the previous state), through `providerUp` (bench/lib/provider-path.ts), so
 * `syncImages` with the options the provider passes: one registry session per sync (a client and
 * connection pool per registry, one blob-location cache, blobs mounted across repositories),
 * progress lines on stderr.
 */

import { readFile, writeFile } from "node:fs/promises";
import type { ImageMirrorSpec, ImageMirrorState } from "../../provider/oci/mirror_types";
import { type Deployed, IMAGE_ENGINE, providerUp } from "../lib/provider-path";

export interface OursJob {
    /** The ImageMirror's inputs as the SDK passes them (the lock already resolved). */
    readonly inputs: ImageMirrorSpec;
    /** Where the resource's state is kept between runs: absent or missing = create, else update. */
    readonly statePath?: string;
}

export interface OursResult {
    readonly ok: boolean;
    readonly error?: string;
    /** Inside the process: the provider's check + create/update. */
    readonly providerMs: number;
    readonly images: number;
    /** Blob bytes of the mirrored images (the state's `bytes`). */
    readonly bytes: number;
}

export async function runJob(job: OursJob): Promise<OursResult> {
    let previous: Deployed<ImageMirrorState> | undefined;
    if (job.statePath !== undefined) {
        try {
            previous = JSON.parse(await readFile(job.statePath, "utf8")) as Deployed<ImageMirrorState>;
        } catch {
            previous = undefined;
        }
    }
    const started = process.hrtime.bigint();
    try {
        const deployed = await providerUp<ImageMirrorSpec, ImageMirrorState>(IMAGE_ENGINE, job.inputs, previous);
        const providerMs = Number(process.hrtime.bigint() - started) / 1e6;
        if (job.statePath !== undefined) {
            await writeFile(job.statePath, JSON.stringify(deployed));
        }
        return {
            ok: true,
            providerMs,
            images: Object.keys(deployed.outs.mirrored ?? {}).length,
            bytes: deployed.outs.bytes ?? 0,
        };
    } catch (err) {
        return {
            ok: false,
            error: (err as Error).message ?? String(err),
            providerMs: Number(process.hrtime.bigint() - started) / 1e6,
            images: 0,
            bytes: 0,
        };
    }
}

async function main(argv: readonly string[]): Promise<void> {
    const [jobPath, resultPath] = argv;
    if (jobPath === undefined || resultPath === undefined) {
        throw new Error("usage: node lib/bench/images-lib/ours.js JOB.json RESULT.json");
    }
    const job = JSON.parse(await readFile(jobPath, "utf8")) as OursJob;
    const result = await runJob(job);
    await writeFile(resultPath, JSON.stringify(result));
    if (!result.ok) {
        process.stderr.write(`${result.error}\n`);
        process.exitCode = 1;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((err: unknown) => {
        process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
    });
}
