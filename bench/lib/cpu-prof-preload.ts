/**
 * `node --require` preload that writes a CPU profile of the process at exit into
 * `$AIRGAP_CPU_PROF_DIR` (node refuses `--cpu-prof` in NODE_OPTIONS, and the Pulumi CLI starts
 * the program and the dynamic provider itself, so this is how they get profiled).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { basename, dirname, join } from "node:path";

const dir = process.env.AIRGAP_CPU_PROF_DIR;
if (dir !== undefined && dir !== "") {
    const session = new Session();
    session.connect();
    session.post("Profiler.enable");
    session.post("Profiler.start");
    let written = false;
    const write = () => {
        if (written) return;
        written = true;
        // A session on the process's own thread answers synchronously.
        session.post("Profiler.stop", (err, result) => {
            if (err === null && result !== undefined) {
                // "dynamic-provider-index.js", "run-index.js": the script and its directory.
                const entry = process.argv[1] ?? "node";
                const script = `${basename(dirname(entry))}-${basename(entry)}`.replace(/[^A-Za-z0-9._-]/g, "_");
                writeFileSync(join(dir, `${script}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
            }
        });
    };
    process.on("exit", write);
    // The engine ends plugin processes (the dynamic provider) with a signal, not by letting them
    // exit: write the profile first, then end as the signal would have.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.once(signal, () => {
            write();
            process.kill(process.pid, signal);
        });
    }
}
