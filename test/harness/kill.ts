/** Runs an engine step in a child process and kills it with SIGKILL part-way, as a crash would. */
import { spawn } from "node:child_process";

/**
 * Starts `node -e 'require(module)[exported](<JSON in specFile>)'` and kills it with SIGKILL
 * after `afterMs` (whether or not it finished); resolves once the process is gone.
 */
export async function runAndKill(module: string, exported: string, specFile: string, afterMs: number): Promise<void> {
    const child = spawn(
        process.execPath,
        [
            "-e",
            `require(${JSON.stringify(module)})[${JSON.stringify(exported)}](JSON.parse(require("fs").readFileSync(${JSON.stringify(specFile)}, "utf8")))`,
        ],
        { stdio: "ignore" },
    );
    const gone = new Promise<void>((resolve) =>
        child.exitCode !== null ? resolve() : child.once("exit", () => resolve()),
    );
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    child.kill("SIGKILL");
    await gone;
}
