/**
 * The applier: makes a host's configuration files what they should be, through a transport
 * (transport.ts: a local directory, or a host over SSH).
 *
 * Contract:
 * - every file is written atomically (temporary file + rename, on the host's side);
 * - a file that existed before and was not ours is saved once, under `backupDir`, before it is
 *   first replaced; destroy puts it back byte for byte; a backup is never overwritten (ERR_CONFLICT);
 * - a failure part-way undoes what this call already did, so the root is as it was;
 * - when the undo cannot run (the connection to the host was lost), the host's journal
 *   (`journalPath`) says which files this resource already owns there: the next call (create,
 *   update or delete) takes them over and completes. The records returned, and so the state,
 *   only ever name files that were written;
 * - reload commands run after the files are written, each when a path it depends on changed; a
 *   failing one fails the call but keeps the files, and stays pending in the journal so the next
 *   call runs it again;
 * - nothing here validates: callers validate first (validate.ts).
 */
import * as path from "node:path";
import { AirgapError, isAirgapError } from "../errors";
import { sha256 } from "../store/atomic";
import { placeOfTarget, rootOf } from "./target";
import { type HostTransport, tail } from "./transport";
import type { FileRecord, HostFile, ReloadSpec } from "./types";

export { placeOfTarget, rootOf };

/** Where originals are kept, relative to the root. */
export function backupDir(name: string): string {
    return `var/lib/pulumi-airgap/backup/${name}`;
}

/** The record of an operation in progress on the host, relative to the root. */
export function journalPath(name: string): string {
    return `var/lib/pulumi-airgap/journal/${name}.json`;
}

interface Journal {
    /** Every file this resource owns on the host right now (written, or about to be). */
    records: FileRecord[];
    /** Reload commands that have not succeeded since a file they depend on changed. */
    pendingReload: string[];
    /** Directories created for the journal itself. */
    dirs: string[];
}

export interface ApplyOptions {
    reload?: readonly ReloadSpec[];
}

export interface ApplyResult {
    records: FileRecord[];
    /** Paths (relative to the root) whose content or mode this call changed, or that it restored. */
    changed: string[];
    /** Reload commands run, in order. */
    reloaded: string[];
}

type Undo = () => Promise<void>;

/** Ancestors of `rel` (relative paths, outermost first) that do not exist yet. */
async function missingDirs(t: HostTransport, rel: string): Promise<string[]> {
    const missing: string[] = [];
    for (let d = path.posix.dirname(rel); d !== "." && d !== "/"; d = path.posix.dirname(d)) {
        if (await t.exists(d)) {
            break;
        }
        missing.unshift(d);
    }
    return missing;
}

/** Removes the directories a record created, deepest first, when they are empty. */
async function removeCreatedDirs(t: HostTransport, dirs: readonly string[]): Promise<void> {
    for (const d of [...new Set(dirs)].sort((a, b) => b.length - a.length)) {
        try {
            await t.rmdir(d);
        } catch (err) {
            // Not empty (someone else put files there) or already gone: leave it. A lost connection is not that.
            if (isAirgapError(err) && err.code === "ERR_NETWORK") throw err;
        }
    }
}

/** Restores the state before `record` was first applied: the backup if there was one, else no file. */
async function restore(t: HostTransport, record: FileRecord, keepDirs = false): Promise<void> {
    if (record.backup && (await t.exists(record.backup))) {
        await t.copy(record.backup, record.path);
        await t.rm(record.backup);
    } else {
        await t.rm(record.path);
    }
    if (!keepDirs) {
        await removeCreatedDirs(t, record.dirs ?? []);
    }
}

async function readJournal(t: HostTransport, name: string): Promise<Journal | undefined> {
    const text = await t.readFile(journalPath(name));
    if (text === undefined) {
        return undefined;
    }
    try {
        const j = JSON.parse(text.toString("utf8")) as Partial<Journal>;
        return { records: j.records ?? [], pendingReload: j.pendingReload ?? [], dirs: j.dirs ?? [] };
    } catch (cause) {
        throw new AirgapError(
            "ERR_PARSE",
            `${t.where}: ${journalPath(name)} is not a journal this version can read; remove it once the files it lists are as wanted`,
            { cause },
        );
    }
}

/**
 * What the journal of an interrupted call adds to `previous`: its records, except those whose
 * original was never saved (the file there is still the original: it is taken over afresh).
 */
async function takeOver(t: HostTransport, previous: readonly FileRecord[], journal: Journal | undefined) {
    const prior = new Map(previous.map((r) => [r.path, r]));
    for (const r of journal?.records ?? []) {
        if (prior.has(r.path)) continue;
        if (r.backup && !(await t.exists(r.backup))) continue;
        prior.set(r.path, r);
    }
    return prior;
}

/** Keeps the host's journal: written before each change, removed once the call is done. */
class JournalKeeper {
    private journalDirs: string[] | undefined;

    constructor(
        private readonly t: HostTransport,
        private readonly name: string,
        readonly owned: Map<string, FileRecord>,
        public pendingReload: string[],
        existing: Journal | undefined,
    ) {
        this.journalDirs = existing?.dirs;
        this.exists = existing !== undefined;
    }

    exists: boolean;

    /** Directories made for the journal that `rel` would have needed too (they count as its own). */
    dirsAbove(rel: string): string[] {
        return (this.journalDirs ?? []).filter((d) => rel.startsWith(`${d}/`));
    }

    async write(): Promise<void> {
        this.journalDirs ??= await missingDirs(this.t, journalPath(this.name));
        const j: Journal = {
            records: [...this.owned.values()],
            pendingReload: this.pendingReload,
            dirs: this.journalDirs,
        };
        await this.t.writeFileAtomic(journalPath(this.name), `${JSON.stringify(j)}\n`, 0o600);
        this.exists = true;
    }

    /** Removes the journal and the directories made for it that nothing else uses. */
    async remove(): Promise<void> {
        if (!this.exists) return;
        await this.t.rm(journalPath(this.name));
        this.exists = false;
        await removeCreatedDirs(this.t, this.journalDirs ?? []);
    }
}

function reloadsFor(reload: readonly ReloadSpec[], changed: readonly string[]): string[] {
    if (changed.length === 0) return [];
    return reload
        .filter((r) => (r.after ?? []).length === 0 || r.after.some((p) => changed.includes(path.posix.normalize(p))))
        .map((r) => r.command);
}

/**
 * Makes the files on the host equal to `files`. `previous` are the records of the last apply
 * (empty on create); files in `previous` but not in `files` are restored. Returns the new records
 * with what changed, after running the reload commands that depend on it.
 */
export async function applyHost(
    t: HostTransport,
    name: string,
    files: readonly HostFile[],
    previous: readonly FileRecord[],
    options: ApplyOptions = {},
): Promise<ApplyResult> {
    const journal = await readJournal(t, name);
    const prior = await takeOver(t, previous, journal);
    const keeper = new JournalKeeper(t, name, new Map(prior), journal?.pendingReload ?? [], journal);
    const undo: Undo[] = [];
    const records: FileRecord[] = [];
    const changed: string[] = [];
    try {
        for (const file of files) {
            const old = prior.get(file.path);
            const before = await t.readFile(file.path);
            const beforeStat = before === undefined ? undefined : await t.stat(file.path);
            const content = Buffer.from(file.content, "utf8");
            if (old && before?.equals(content) && beforeStat?.mode === file.mode) {
                records.push({ ...old, sha256: sha256(content) });
                continue;
            }
            let backup = old?.backup ?? "";
            const dirs = old?.dirs ?? [...keeper.dirsAbove(file.path), ...(await missingDirs(t, file.path))];
            if (!old && before !== undefined) {
                backup = `${backupDir(name)}/${file.path}`;
                if (await t.exists(backup)) {
                    // The file is already managed: by another HostMirrorConfig of this name, or by one
                    // whose state was lost. Its backup is the only copy of the original: never overwrite it.
                    throw new AirgapError(
                        "ERR_CONFLICT",
                        `${file.path} is already managed: ${t.where.replace(/\/$/, "")}/${backup} holds its original. ` +
                            "Destroy the resource that manages it, or, if none does, put that backup back in place " +
                            "(or remove it once the original is not wanted) and run again",
                        { argument: "name" },
                    );
                }
                dirs.push(...keeper.dirsAbove(backup), ...(await missingDirs(t, backup)));
            }
            const record: FileRecord = { path: file.path, sha256: sha256(content), backup, dirs: [...new Set(dirs)] };
            // The journal names the file before anything of it changes: a call cut short after this
            // point leaves a record the next call takes over.
            keeper.owned.set(file.path, record);
            await keeper.write();
            if (!old) {
                undo.push(async () => {
                    await removeCreatedDirs(t, record.dirs ?? []);
                    keeper.owned.delete(file.path);
                });
            }
            if (!old && backup) {
                await t.copy(file.path, backup);
                undo.push(() => t.rm(backup));
            }
            await t.writeFileAtomic(file.path, content, file.mode);
            undo.push(() =>
                before !== undefined
                    ? t.writeFileAtomic(file.path, before, beforeStat?.mode ?? 0o644)
                    : t.rm(file.path),
            );
            records.push(record);
            changed.push(file.path);
        }
        const wanted = new Set(files.map((f) => f.path));
        for (const old of prior.values()) {
            if (wanted.has(old.path)) continue;
            const before = await t.readFile(old.path);
            const beforeStat = before === undefined ? undefined : await t.stat(old.path);
            const hadBackup = old.backup !== "" && (await t.exists(old.backup));
            await restore(t, old);
            keeper.owned.delete(old.path);
            await keeper.write();
            changed.push(old.path);
            undo.push(async () => {
                if (hadBackup && (await t.exists(old.path))) {
                    await t.copy(old.path, old.backup);
                }
                if (before !== undefined) {
                    await t.writeFileAtomic(old.path, before, beforeStat?.mode ?? 0o644);
                }
                keeper.owned.set(old.path, old);
            });
        }
    } catch (cause) {
        let undone = true;
        for (const step of undo.reverse()) {
            try {
                await step();
            } catch {
                // Keep undoing the rest; the original error is what the caller needs.
                undone = false;
            }
        }
        try {
            if (undone) {
                await keeper.remove();
            }
        } catch {
            // The connection is gone: the journal stays, and the next call takes it over.
        }
        if (isAirgapError(cause)) {
            if (!undone && cause.code === "ERR_NETWORK") {
                throw new AirgapError(
                    "ERR_NETWORK",
                    `${cause.message}. The files written before stay on the host; ${journalPath(name)} there lists them, and the next \`pulumi up\` completes the change`,
                    { cause },
                );
            }
            throw cause;
        }
        throw new AirgapError("ERR_IO", `writing host configuration to ${t.where}: ${(cause as Error).message}`, {
            cause,
        });
    }

    const toRun = [...new Set([...keeper.pendingReload, ...reloadsFor(options.reload ?? [], changed)])];
    // Run in the order the resource lists them; pending commands no longer listed still run first.
    const listed = (options.reload ?? []).map((r) => r.command);
    toRun.sort((a, b) => (listed.indexOf(a) + 1 || 0) - (listed.indexOf(b) + 1 || 0));
    const reloaded: string[] = [];
    if (toRun.length > 0) {
        keeper.pendingReload = [...toRun];
        await keeper.write();
        for (const command of toRun) {
            const r = await t.run(command);
            if (r.code !== 0) {
                await keeper.write().catch(() => undefined);
                throw new AirgapError(
                    "ERR_IO",
                    `${t.where}: reload command failed (exit ${r.code}): ${command}: ${tail(r.stderr) || "(no error output)"}. ` +
                        "The files were written and stay in place; the next `pulumi up` runs the command again",
                );
            }
            reloaded.push(command);
            keeper.pendingReload = keeper.pendingReload.filter((c) => c !== command);
        }
    }
    await keeper.remove();
    return { records, changed, reloaded };
}

/** `applyHost` without reload commands: the new records. */
export async function applyFiles(
    t: HostTransport,
    name: string,
    files: readonly HostFile[],
    previous: readonly FileRecord[],
): Promise<FileRecord[]> {
    return (await applyHost(t, name, files, previous)).records;
}

/** The records with each file's current hash ("" when the file is missing). */
export async function readFiles(t: HostTransport, records: readonly FileRecord[]): Promise<FileRecord[]> {
    const out: FileRecord[] = [];
    for (const r of records) {
        const data = await t.readFile(r.path);
        out.push({ ...r, sha256: data === undefined ? "" : sha256(data) });
    }
    return out;
}

/**
 * Removes what `records` created and puts back what they replaced; with `name`, also what the
 * journal of an interrupted call of that resource lists.
 */
export async function removeFiles(t: HostTransport, records: readonly FileRecord[], name?: string): Promise<void> {
    const journal = name === undefined ? undefined : await readJournal(t, name);
    const all = [...(await takeOver(t, records, journal)).values()];
    for (const r of all) {
        await restore(t, r, true);
    }
    // Directories are shared between files (etc/apt holds keyrings/ and sources.list.d/): remove
    // them only once every file is gone.
    if (journal && name !== undefined) {
        await t.rm(journalPath(name));
    }
    await removeCreatedDirs(t, [...all.flatMap((r) => r.dirs ?? []), ...(journal?.dirs ?? [])]);
}
