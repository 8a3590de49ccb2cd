/**
 * Lock files shared between processes: one holder at a time, a dead holder's lock taken over by
 * one waiter only, and a bounded wait that ends in an error naming the holder.
 */
import * as fsp from "node:fs/promises";
import { hostname } from "node:os";
import * as path from "node:path";
import { AirgapError } from "../errors";

/** A held lock; `release` is idempotent. */
export interface HeldLock {
    release(): Promise<void>;
}

/**
 * Takes the lock `file` (created with O_EXCL, holding `pid@host`), waiting up to `timeoutMs` for
 * its holder to release it; then fails with ERR_CONFLICT naming the holder.
 *
 * A lock left by a process that no longer runs on this host is taken over, by one waiter only:
 * the takeover itself is guarded by `<file>.takeover` (created with O_EXCL), and the waiter that
 * holds it removes the lock only if it still names the dead holder it saw. Without that guard two
 * waiters could both see the dead holder, one remove it and take the lock, and the other then
 * remove the fresh lock and take it too.
 */
export async function takeLock(file: string, timeoutMs: number): Promise<HeldLock> {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const me = `${process.pid}@${hostname()}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            const handle = await fsp.open(file, "wx", 0o644);
            await handle.writeFile(`${me}\n`);
            await handle.close();
            let released = false;
            return {
                async release() {
                    if (!released) {
                        released = true;
                        await fsp.rm(file, { force: true });
                    }
                },
            };
        } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === "ENOENT") {
                // Another run removed the directory once it was empty (its last mirror gone):
                // make it again and retry.
                await fsp.mkdir(path.dirname(file), { recursive: true });
                continue;
            }
            if (code !== "EEXIST") {
                throw new AirgapError("ERR_IO", `taking the lock ${file}`, { cause: err });
            }
        }
        const holder = await lockHolder(file);
        if (holder !== undefined && isDeadHere(holder) && (await takeOver(file, holder))) {
            continue;
        }
        if (Date.now() >= deadline) {
            throw new AirgapError(
                "ERR_CONFLICT",
                `${file} is held by ${holder || "another process"} (process@host); waited ${Math.round(timeoutMs / 1000)} s. ` +
                    "Another run is using it; remove the file only if none is",
            );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
}

async function lockHolder(file: string): Promise<string | undefined> {
    try {
        return (await fsp.readFile(file, "utf8")).trim();
    } catch {
        return undefined; // released meanwhile
    }
}

/** A holder (`pid@host`) that names a process of this host which no longer runs. */
function isDeadHere(holder: string): boolean {
    const [pid, host] = holder.split("@");
    return host === hostname() && /^\d+$/.test(pid ?? "") && !isAlive(Number(pid));
}

/** A takeover guard older than this was left by a waiter that died holding it. */
const TAKEOVER_STALE_MS = 10_000;

/** Removes a lock left by `deadHolder`, if this waiter is the one to do it. */
async function takeOver(file: string, deadHolder: string): Promise<boolean> {
    const guard = `${file}.takeover`;
    let handle: fsp.FileHandle;
    try {
        handle = await fsp.open(guard, "wx", 0o644);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
            throw new AirgapError("ERR_IO", `taking over the lock ${file}`, { cause: err });
        }
        const info = await fsp.stat(guard).catch(() => undefined);
        if (info !== undefined && Date.now() - info.mtimeMs > TAKEOVER_STALE_MS) {
            await fsp.rm(guard, { force: true });
        }
        return false;
    }
    try {
        await handle.close();
        // Only the guard's holder removes a lock, so the lock cannot have changed hands to a live
        // holder between this read and the removal unless its dead holder came back.
        if ((await lockHolder(file)) !== deadHolder) {
            return false;
        }
        await fsp.rm(file, { force: true });
        return true;
    } finally {
        await fsp.rm(guard, { force: true });
    }
}

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
}
