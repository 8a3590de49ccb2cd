/**
 * Writing a publish (publish.ts, steps 2 to 5): pool placement, the suite built aside, the
 * by-hash files carried from the previous generation, the switch, and garbage collection.
 */

import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors";
import type { ReleaseSigner } from "../pgp/sign";
import { sha256, syncPath, writeFileAtomic } from "../store/atomic";
import type { HashMemo } from "../store/hashcache";
import { collectPool, type PlaceMode, placePoolFile, removePoolFiles } from "./pool";
import {
    currentSuite,
    distLink,
    generationsOf,
    readOptional,
    type PoolReferences,
    referencedPoolFiles,
    STAGING_DIR,
} from "./publish_layout";
import { parseRelease, type ReleaseFile } from "./release";
import { forEachLimited } from "../store/concurrency";
import type { PublishPlan } from "./publish_plan";

/**
 * Places the pool files of the plan. A target that a published suite names with other content
 * is refused (`ERR_INVALID_ARGUMENT`): replacing it would change a file under published
 * indexes; the same name, version and architecture cannot have two contents.
 */
export async function placePool(
    plan: PublishPlan,
    mode: PlaceMode | undefined,
    hashMemo: HashMemo | undefined,
): Promise<{ placed: string[]; kept: string[]; references: PoolReferences }> {
    const references = await referencedPoolFiles(plan.repoDir);
    const placed: string[] = [];
    const kept: string[] = [];
    const targets = [...plan.byPool.keys()].sort();
    for (const target of targets) {
        const published = references.files.get(target);
        const record = plan.byPool.get(target)!.record;
        if (published !== undefined && published !== record.sha256) {
            throw invalidArgument(
                "packages",
                `${record.name} ${record.version} ${record.architecture}: ${target} is already published with SHA256 ${published}, not ${record.sha256}; give the new build another version, or unpublish first`,
            );
        }
    }
    for (const [target, file] of plan.extraPool ?? []) {
        const published = references.files.get(target);
        if (published !== undefined && published !== file.sha256) {
            throw invalidArgument(
                "sources",
                `${file.what}: ${target} is already published with SHA256 ${published}, not ${file.sha256}; unpublish first`,
            );
        }
    }
    const files = new Map<string, { file: string; sha256: string; size: number }>([
        ...[...plan.byPool].map(([target, pkg]): [string, { file: string; sha256: string; size: number }] => [
            target,
            { file: pkg.file, sha256: pkg.record.sha256, size: pkg.record.size },
        ]),
        ...(plan.extraPool ?? []),
    ]);
    await forEachLimited([...files.keys()].sort(), 4, async (target) => {
        const pkg = files.get(target)!;
        const result = await placePoolFile(
            pkg.file,
            path.join(plan.repoDir, target),
            { sha256: pkg.sha256, size: pkg.size },
            { mode, hashMemo, published: references.files.has(target) },
        );
        (result === "kept" ? kept : placed).push(target);
    });
    return { placed: placed.sort(), kept: kept.sort(), references };
}

/** Links `source` to `target`, or copies it when links are refused. */
export async function linkOrCopy(source: string, target: string): Promise<void> {
    try {
        await fsp.link(source, target);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") {
            return;
        }
        await fsp.copyFile(source, target);
    }
}

/** Every directory below `dir` (itself included), deepest first. */
export async function directoriesBottomUp(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
        for (const entry of await fsp.readdir(d, { withFileTypes: true })) {
            if (entry.isDirectory()) {
                await walk(path.join(d, entry.name));
            }
        }
        out.push(d);
    };
    await walk(dir);
    return out;
}

/**
 * Writes a complete suite into `dir`: indexes, by-hash copies (its own and the previous
 * generation's), Release and, when signing, InRelease and Release.gpg; then syncs it.
 */
export async function writeSuite(
    dir: string,
    indexes: ReadonlyMap<string, Buffer>,
    releaseText: string,
    signer: ReleaseSigner | undefined,
    date: Date,
    byHash: { enabled: boolean; previousDir?: string },
    /** Index files already written elsewhere (Contents), moved in: path relative to the suite → file. */
    built: ReadonlyMap<string, { file: string; sha256: string }> = new Map(),
): Promise<void> {
    for (const [rel, bytes] of indexes) {
        writeFileAtomic(path.join(dir, rel), bytes);
    }
    for (const [rel, { file, sha256: hash }] of built) {
        await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await fsp.rename(file, path.join(dir, rel));
        if (byHash.enabled) {
            const byHashDir = path.join(dir, path.dirname(rel), "by-hash", "SHA256");
            await fsp.mkdir(byHashDir, { recursive: true });
            await linkOrCopy(path.join(dir, rel), path.join(byHashDir, hash));
        }
    }
    if (byHash.enabled) {
        for (const [rel, bytes] of indexes) {
            const byHashDir = path.join(dir, path.dirname(rel), "by-hash", "SHA256");
            await fsp.mkdir(byHashDir, { recursive: true });
            await linkOrCopy(path.join(dir, rel), path.join(byHashDir, sha256(bytes)));
        }
        if (byHash.previousDir !== undefined) {
            await carryByHash(byHash.previousDir, dir);
        }
    }
    writeFileAtomic(path.join(dir, "Release"), releaseText);
    if (signer !== undefined) {
        const signed = await signer.sign(releaseText, date);
        writeFileAtomic(path.join(dir, "InRelease"), signed.inRelease);
        writeFileAtomic(path.join(dir, "Release.gpg"), signed.releaseGpg);
    }
    for (const d of await directoriesBottomUp(dir)) {
        await syncPath(d);
    }
}

/**
 * Copies into `dir` the by-hash files of the indexes the previous suite's Release lists, so a
 * client holding that Release can still fetch them after the switch.
 */
export async function carryByHash(previousDir: string, dir: string): Promise<void> {
    const text = await readOptional(path.join(previousDir, "Release"));
    if (text === undefined) {
        return;
    }
    let files: readonly ReleaseFile[];
    try {
        files = parseRelease(text.toString("utf8")).files;
    } catch {
        // A previous suite we cannot read has nothing we could carry over safely.
        return;
    }
    for (const file of files) {
        if (file.sha256 === undefined) {
            continue;
        }
        const rel = path.join(path.dirname(file.path), "by-hash", "SHA256", file.sha256);
        const source = path.join(previousDir, rel);
        if ((await fsp.stat(source).catch(() => undefined))?.isFile() !== true) {
            continue;
        }
        await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await linkOrCopy(source, path.join(dir, rel));
    }
}

/**
 * Makes `dists/<dist>` point to `generationDir` with one rename of a symlink over it.
 *
 * A suite published by another tool is a plain directory, which a rename cannot replace: it is
 * moved into `.generations/` first. Between those two renames the suite is absent (a 404 for a
 * client, never a mismatch); that happens once, on the first publish over such a suite.
 */
export async function switchSuite(repoDir: string, distribution: string, generationDir: string): Promise<void> {
    const link = distLink(repoDir, distribution);
    const distsDir = path.dirname(link);
    await fsp.mkdir(distsDir, { recursive: true });
    const current = await currentSuite(repoDir, distribution);
    if (current.kind === "directory") {
        await fsp.rename(
            current.dir,
            path.join(generationsOf(repoDir, distribution), `adopted-${randomBytes(4).toString("hex")}`),
        );
    }
    const tmp = path.join(distsDir, `.${distribution}.tmp-${randomBytes(6).toString("hex")}`);
    await fsp.symlink(path.relative(distsDir, generationDir), tmp);
    try {
        await fsp.rename(tmp, link);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    }
    await syncPath(distsDir);
}

/**
 * Removes what no published suite needs: generations of `distribution` other than
 * `keepGenerations` (the current one and the one before it), staging left-overs, stray temporary
 * symlinks under `dists/`, and, when `collectPoolFiles`, pool files no kept generation names.
 * Pool files are kept when some suite or generation cannot be read.
 */
export async function collectGarbage(
    repoDir: string,
    distribution: string,
    keepGenerations: readonly string[],
    collectPoolFiles: boolean | readonly string[] = true,
) {
    const generations = generationsOf(repoDir, distribution);
    for (const name of await fsp.readdir(generations).catch(() => [] as string[])) {
        if (!keepGenerations.includes(name)) {
            await fsp.rm(path.join(generations, name), { recursive: true, force: true });
        }
    }
    await fsp.rm(path.join(repoDir, STAGING_DIR), { recursive: true, force: true });
    for (const name of await fsp.readdir(path.join(repoDir, "dists")).catch(() => [] as string[])) {
        if (name.startsWith(".") && name.includes(".tmp-")) {
            await fsp.rm(path.join(repoDir, "dists", name), { force: true });
        }
    }
    if (collectPoolFiles === false || (Array.isArray(collectPoolFiles) && collectPoolFiles.length === 0)) {
        return [];
    }
    const references = await referencedPoolFiles(repoDir);
    if (!references.complete) {
        return [];
    }
    if (Array.isArray(collectPoolFiles)) {
        // Only these can have become garbage (files the previous suite named and this one does
        // not): remove those no suite names now, without walking the whole pool.
        return removePoolFiles(
            repoDir,
            collectPoolFiles.filter((file) => !references.files.has(file)),
        );
    }
    return collectPool(repoDir, new Set(references.files.keys()));
}
