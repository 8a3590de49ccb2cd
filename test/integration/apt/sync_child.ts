/**
 * Runs one `syncMirror` in a process of its own, so that a test can kill it at a chosen point:
 *
 *     node lib/test/integration/apt/sync_child.js <job.json>
 *
 * The job file holds a `SyncChildJob`. On success the resulting state is printed as JSON on
 * stdout and the exit code is 0; on failure the error goes to stderr and the exit code is 1.
 * With `hangBeforeSwitch`, the publish stops once the new generation is complete but before
 * `dists/<dist>` is switched: the marker file is written and the process waits to be killed.
 */
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { PublishHooks } from "../../../provider/apt/publish";
import { type AptMirrorSpec, syncMirror } from "../../../provider/apt/mirror";

export interface SyncChildJob {
    spec: AptMirrorSpec;
    /** A file to create when the publish reaches `beforeSwitch`; the process then hangs there. */
    hangBeforeSwitch?: string;
}

async function main(jobFile: string): Promise<void> {
    const job = JSON.parse(await readFile(jobFile, "utf8")) as SyncChildJob;
    const marker = job.hangBeforeSwitch;
    const hooks: PublishHooks | undefined =
        marker === undefined
            ? undefined
            : {
                  beforeSwitch: ({ generation }) => {
                      writeFileSync(marker, generation);
                      // A pending promise alone does not keep node alive; the timer does.
                      return new Promise<void>(() => setInterval(() => undefined, 60_000));
                  },
              };
    const state = await syncMirror(job.spec, { hooks });
    process.stdout.write(`${JSON.stringify(state)}\n`);
}

if (require.main === module) {
    const jobFile = process.argv[2];
    if (jobFile === undefined) {
        process.stderr.write("usage: sync_child.js <job.json>\n");
        process.exit(2);
    }
    main(jobFile).then(
        () => process.exit(0),
        (err: unknown) => {
            process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
            process.exit(1);
        },
    );
}
