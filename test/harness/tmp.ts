import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Temporary directories for tests.
 *
 * Every directory made here is registered and removed by `cleanupAll()` (or by the helper that
 * owns it). With `KEEP_TMP=1` in the environment nothing is removed, so a failing run can be
 * inspected afterwards; the kept paths are printed once at exit.
 */

const live = new Set<string>();
const kept = new Set<string>();

/** True when `KEEP_TMP=1` asks to keep temporary directories for debugging. */
export function keepTmp(): boolean {
    return process.env["KEEP_TMP"] === "1";
}

/**
 * Creates a fresh directory under the system temp dir, named `airgap-<prefix>-XXXXXX`.
 * The path is kept short on purpose: gpg-agent and sshd put UNIX sockets below it.
 */
export async function makeTempDir(prefix: string): Promise<string> {
    const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, "-");
    const dir = await mkdtemp(join(tmpdir(), `airgap-${safe}-`));
    live.add(dir);
    return dir;
}

/** Removes one directory made by `makeTempDir` (kept instead when `KEEP_TMP=1`). */
export async function removeTempDir(dir: string): Promise<void> {
    live.delete(dir);
    if (keepTmp()) {
        kept.add(dir);
        return;
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    // An APT mirror published under `dir` keeps its engine state beside it (`<dir>.airgap`).
    await rm(`${dir}.airgap`, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes every directory made by `makeTempDir` that is still there. */
export async function cleanupAll(): Promise<void> {
    const dirs = [...live];
    await Promise.all(dirs.map((dir) => removeTempDir(dir)));
}

/** The directories made by `makeTempDir` and not yet removed. */
export function liveTempDirs(): string[] {
    return [...live];
}

// A safety net for suites that forget `cleanupAll()` or stop on an uncaught error.
process.once("exit", () => {
    if (keepTmp()) {
        for (const dir of live) kept.add(dir);
        if (kept.size > 0) process.stderr.write(`KEEP_TMP=1: kept ${[...kept].join(" ")}\n`);
        return;
    }
    for (const dir of live) {
        try {
            rmSync(dir, { recursive: true, force: true });
        } catch {
            // best effort at exit
        }
    }
});
