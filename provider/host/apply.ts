/**
 * The local applier: writes a host's configuration files under a root directory.
 *
 * Contract:
 * - every file is written atomically (temporary file + rename);
 * - a file that existed before and was not ours is saved once, under `backupDir`, before it is
 *   first replaced; destroy puts it back byte for byte;
 * - a failure part-way undoes what this call already did, so the root is as it was;
 * - nothing here validates: callers validate first (validate.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { AirgapError, isAirgapError } from "../errors";
import { placeOf } from "../store/place";
import { copyFileAtomic, sha256, sha256File, writeFileAtomic } from "../store/atomic";
import type { FileRecord, HostFile, HostMirrorSpec } from "./types";

/** Where originals are kept, relative to the root. */
export function backupDir(name: string): string {
    return `var/lib/pulumi-airgap/backup/${name}`;
}

/** The root a target names, as given. */
export function rootOf(spec: Pick<HostMirrorSpec, "target">): string {
    return spec.target?.local?.root ?? "/";
}

/** The place a target stands for, spelled one way (see `store/place.ts`). */
export function placeOfTarget(spec: Pick<HostMirrorSpec, "target">): string {
    return placeOf(rootOf(spec));
}

function under(root: string, rel: string): string {
    const full = path.resolve(root, rel);
    if (full !== path.resolve(root) && !full.startsWith(`${path.resolve(root)}${path.sep}`)) {
        throw new AirgapError("ERR_INVALID_ARGUMENT", `path "${rel}" leaves the root ${root}`);
    }
    return full;
}

type Undo = () => void;

/** Ancestors of `rel` (relative paths, outermost first) that do not exist yet under `root`. */
function missingDirs(root: string, rel: string): string[] {
    const missing: string[] = [];
    for (let d = path.posix.dirname(rel); d !== "." && d !== "/"; d = path.posix.dirname(d)) {
        if (fs.existsSync(under(root, d))) {
            break;
        }
        missing.unshift(d);
    }
    return missing;
}

/** Removes the directories a record created, deepest first, when they are empty. */
function removeCreatedDirs(root: string, dirs: readonly string[]): void {
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
        try {
            fs.rmdirSync(under(root, d));
        } catch {
            // Not empty (someone else put files there) or already gone: leave it.
        }
    }
}

/** Restores the state before `record` was first applied: the backup if there was one, else no file. */
function restore(root: string, record: FileRecord, keepDirs = false): void {
    const target = under(root, record.path);
    const saved = record.backup ? under(root, record.backup) : undefined;
    if (saved && fs.existsSync(saved)) {
        copyFileAtomic(saved, target);
        fs.rmSync(saved);
    } else {
        fs.rmSync(target, { force: true });
    }
    if (!keepDirs) {
        removeCreatedDirs(root, record.dirs ?? []);
    }
}

/**
 * Makes the files under `root` equal to `files`. `previous` are the records of the last apply
 * (empty on create); files in `previous` but not in `files` are restored. Returns the new records.
 */
export function applyFiles(
    root: string,
    name: string,
    files: readonly HostFile[],
    previous: readonly FileRecord[],
): FileRecord[] {
    const prior = new Map(previous.map((r) => [r.path, r]));
    const undo: Undo[] = [];
    const records: FileRecord[] = [];
    try {
        for (const file of files) {
            const target = under(root, file.path);
            const old = prior.get(file.path);
            let backup = old?.backup ?? "";
            const dirs = old?.dirs ?? missingDirs(root, file.path);
            if (!old) {
                undo.push(() => removeCreatedDirs(root, dirs));
            }
            if (!old && fs.existsSync(target)) {
                backup = `${backupDir(name)}/${file.path}`;
                const saved = under(root, backup);
                if (fs.existsSync(saved)) {
                    // The file is already managed: by another HostMirrorConfig of this name, or by one
                    // whose state was lost. Its backup is the only copy of the original: never overwrite it.
                    throw new AirgapError(
                        "ERR_CONFLICT",
                        `${file.path} is already managed: ${path.join(root, backup)} holds its original. ` +
                            "Destroy the resource that manages it, or, if none does, put that backup back in place " +
                            "(or remove it once the original is not wanted) and run again",
                        { argument: "name" },
                    );
                }
                dirs.push(...missingDirs(root, backup));
                copyFileAtomic(target, saved);
                undo.push(() => fs.rmSync(saved, { force: true }));
            }
            const before = fs.existsSync(target) ? fs.readFileSync(target) : undefined;
            const beforeMode = before ? fs.statSync(target).mode & 0o7777 : 0;
            writeFileAtomic(target, file.content, file.mode);
            undo.push(() =>
                before ? writeFileAtomic(target, before, beforeMode) : fs.rmSync(target, { force: true }),
            );
            records.push({ path: file.path, sha256: sha256(file.content), backup, dirs });
        }
        const wanted = new Set(files.map((f) => f.path));
        for (const old of previous) {
            if (!wanted.has(old.path)) {
                const target = under(root, old.path);
                const before = fs.existsSync(target) ? fs.readFileSync(target) : undefined;
                restore(root, old);
                undo.push(() => {
                    if (before) {
                        if (old.backup && fs.existsSync(target)) {
                            copyFileAtomic(target, under(root, old.backup));
                        }
                        writeFileAtomic(target, before);
                    }
                });
            }
        }
    } catch (cause) {
        for (const step of undo.reverse()) {
            try {
                step();
            } catch {
                // Keep undoing the rest; the original error is what the caller needs.
            }
        }
        if (isAirgapError(cause)) {
            throw cause;
        }
        throw new AirgapError("ERR_IO", `writing host configuration under ${root}: ${(cause as Error).message}`, {
            cause,
        });
    }
    return records;
}

/** The records with each file's current hash ("" when the file is missing). */
export function readFiles(root: string, records: readonly FileRecord[]): FileRecord[] {
    return records.map((r) => ({ ...r, sha256: sha256File(under(root, r.path)) ?? "" }));
}

/** Removes what `records` created and puts back what they replaced. */
export function removeFiles(root: string, records: readonly FileRecord[]): void {
    for (const r of records) {
        restore(root, r, true);
    }
    // Directories are shared between files (etc/apt holds keyrings/ and sources.list.d/): remove
    // them only once every file is gone.
    removeCreatedDirs(
        root,
        records.flatMap((r) => r.dirs ?? []),
    );
}
