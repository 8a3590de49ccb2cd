/**
 * The on-disk layout of a published APT repository, shared by the publisher and its reader.
 *
 *     <root>/<prefix>/
 *         pool/<component>/<p>/<source>/<file>.deb      content-checked, never rewritten
 *         dists/<dist> -> ../.generations/<dist>/<gen>   a symlink, swapped by rename(2)
 *         .generations/<dist>/<gen>/                     complete, signed suites (Release, InRelease,
 *                                                          Release.gpg, <component>/binary-<arch>/...)
 *         .staging/<dist>-<gen>/                          a suite being built; garbage after a crash
 *         .lock                                           held by the one publisher at work
 *
 * A client only ever reaches a suite through `dists/<dist>`, and that name always resolves to
 * one complete generation, old or new: the generation is written and synced in full before the
 * symlink is swapped, and the swap is a single rename of a symlink over another. The HTTP server
 * in front MUST follow symlinks (nginx and Apache's `FollowSymLinks` do by default).
 */

import { randomBytes } from "node:crypto";
import type { Dirent } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { AirgapError, invalidArgument } from "../errors";
import { type HeldLock, takeLock } from "../store/lockfile";
import { eachStanza, toPackageRecord, unsafePathReason } from "./control";
import { sourceStanzaFiles } from "./sources";

export const GENERATIONS_DIR = ".generations";
export const STAGING_DIR = ".staging";
export const LOCK_FILE = ".lock";

/** Names that may stand for one path segment: a suite, a codename, an architecture. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

/** Checks a single-segment name (distribution, codename, architecture). */
export function checkName(argument: string, value: string): void {
    if (typeof value !== "string" || !NAME.test(value)) {
        throw invalidArgument(
            argument,
            `${JSON.stringify(value)} must start with a letter or digit and hold only letters, digits and . _ + ~ -`,
        );
    }
}

/**
 * `<root>/<prefix>`, after checking that the prefix stays below the root and cannot collide with
 * the layout: relative, `/`-separated, no segment starting with "." and none named `dists` or
 * `pool`. "" publishes at the root itself.
 */
export function repoDirOf(root: string, prefix: string): string {
    if (typeof root !== "string" || root === "") {
        throw invalidArgument("root", "is empty: give the directory the repositories are served from");
    }
    if (prefix !== "") {
        const unsafe = unsafePathReason(prefix.replace(/\/+$/, ""));
        if (unsafe !== undefined) {
            throw invalidArgument("prefix", `${JSON.stringify(prefix)} ${unsafe}`);
        }
        for (const segment of prefix.replace(/\/+$/, "").split("/")) {
            if (segment.startsWith(".") || segment === "dists" || segment === "pool") {
                throw invalidArgument(
                    "prefix",
                    `${JSON.stringify(prefix)}: the segment ${JSON.stringify(segment)} would collide with a repository's own files`,
                );
            }
        }
    }
    return path.resolve(root, prefix);
}

export function distLink(repoDir: string, distribution: string): string {
    return path.join(repoDir, "dists", distribution);
}

export function generationsOf(repoDir: string, distribution: string): string {
    return path.join(repoDir, GENERATIONS_DIR, distribution);
}

/** A sortable, unique generation name: `20240810T095042Z-1a2b3c4d`. */
export function newGenerationName(date: Date): string {
    const stamp = date
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
    return `${stamp}-${randomBytes(4).toString("hex")}`;
}

/** What `dists/<dist>` is now. */
export type CurrentSuite =
    | { readonly kind: "none" }
    /** A symlink into `.generations/<dist>/`: published by this engine. */
    | { readonly kind: "generation"; readonly generation: string; readonly dir: string }
    /** A plain directory (published by another tool, e.g. aptly): replaced on the next publish. */
    | { readonly kind: "directory"; readonly dir: string };

export async function currentSuite(repoDir: string, distribution: string): Promise<CurrentSuite> {
    const link = distLink(repoDir, distribution);
    const info = await fsp.lstat(link).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") {
            return undefined;
        }
        throw err;
    });
    if (info === undefined) {
        return { kind: "none" };
    }
    if (info.isDirectory()) {
        return { kind: "directory", dir: link };
    }
    if (!info.isSymbolicLink()) {
        throw new AirgapError("ERR_IO", `${link} is neither a directory nor a symlink; remove it to publish here`);
    }
    const target = await fsp.readlink(link);
    const dir = path.resolve(path.dirname(link), target);
    const parent = generationsOf(repoDir, distribution);
    if (path.dirname(dir) !== parent) {
        throw new AirgapError("ERR_IO", `${link} points to ${target}, outside ${parent}; remove it to publish here`);
    }
    return { kind: "generation", generation: path.basename(dir), dir };
}

/** Reads a file, or undefined when it does not exist. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
    try {
        return await fsp.readFile(file);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            return undefined;
        }
        throw err;
    }
}

/**
 * The `Packages` indexes below a suite directory (relative paths such as
 * `main/binary-amd64/Packages`), with the uncompressed form preferred over `.gz`; `by-hash`
 * copies are skipped.
 */
export async function packagesIndexesIn(
    suiteDir: string,
    base: "Packages" | "Sources" = "Packages",
): Promise<string[]> {
    const found = new Set<string>();
    const walk = async (rel: string): Promise<void> => {
        let entries: Dirent[];
        try {
            entries = await fsp.readdir(path.join(suiteDir, rel), { withFileTypes: true });
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") {
                return;
            }
            throw err;
        }
        for (const entry of entries) {
            const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
            if (entry.isDirectory() && entry.name !== "by-hash") {
                await walk(child);
            } else if (entry.isFile() && (entry.name === base || entry.name === `${base}.gz`)) {
                found.add(child);
            }
        }
    };
    await walk("");
    return [...found].filter((p) => !(p.endsWith(".gz") && found.has(p.slice(0, -3)))).sort();
}

/** Decompresses an index by its name (`Packages` or `Packages.gz`). */
export function indexText(name: string, bytes: Buffer): string {
    return (name.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
}

/** Pool files the published suites name, with the SHA256 each is published with. */
export interface PoolReferences {
    readonly files: ReadonlyMap<string, string>;
    /**
     * False when some suite under `dists/` could not be read: its references are unknown, so no
     * pool file may be collected.
     */
    readonly complete: boolean;
    /** One line per suite that could not be read. */
    readonly problems: readonly string[];
}

/**
 * Reads every suite published under `<repoDir>/dists` (ours or another tool's) and collects the
 * pool files their `Packages` and `Sources` indexes name.
 */
export async function referencedPoolFiles(repoDir: string): Promise<PoolReferences> {
    const files = new Map<string, string>();
    const problems: string[] = [];
    // The suites clients read now (`dists/*`), and every generation kept under `.generations/`:
    // the previous one stays one publish longer, so that a client that read its indexes just
    // before a switch still finds the files they name.
    const suites = new Map<string, string>(); // real directory → how it is named in messages
    for (const name of (await readdirIfAny(path.join(repoDir, "dists"))).sort()) {
        if (!name.startsWith(".")) {
            const dir = path.join(repoDir, "dists", name);
            suites.set(await fsp.realpath(dir).catch(() => dir), `dists/${name}`);
        }
    }
    for (const dist of (await readdirIfAny(path.join(repoDir, GENERATIONS_DIR))).sort()) {
        for (const gen of (await readdirIfAny(path.join(repoDir, GENERATIONS_DIR, dist))).sort()) {
            const dir = path.join(repoDir, GENERATIONS_DIR, dist, gen);
            const real = await fsp.realpath(dir).catch(() => dir);
            if (!suites.has(real)) {
                suites.set(real, `${GENERATIONS_DIR}/${dist}/${gen}`);
            }
        }
    }
    for (const [suiteDir, name] of suites) {
        try {
            for (const index of await packagesIndexesIn(suiteDir)) {
                const text = indexText(index, await fsp.readFile(path.join(suiteDir, index)));
                const component = index.split("/binary-")[0];
                for (const stanza of eachStanza(text)) {
                    const record = toPackageRecord(stanza, component);
                    files.set(record.filename, record.sha256);
                }
            }
            // Source packages' files (`withSources`).
            for (const index of await packagesIndexesIn(suiteDir, "Sources")) {
                for (const stanza of eachStanza(indexText(index, await fsp.readFile(path.join(suiteDir, index))))) {
                    for (const [file, sha] of sourceStanzaFiles(stanza)) {
                        files.set(file, sha);
                    }
                }
            }
        } catch (err) {
            problems.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
    }
    return { files, complete: problems.length === 0, problems };
}

async function readdirIfAny(dir: string): Promise<string[]> {
    try {
        return await fsp.readdir(dir);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            return [];
        }
        throw err;
    }
}

/** A held lock on a repository directory; `release` is idempotent. */
export type RepoLock = HeldLock;

/**
 * Takes `<repoDir>/.lock`, waiting up to `timeoutMs` for another publisher to finish. Suites of
 * one prefix share the pool, so two publishers at once could collect each other's new files.
 */
export async function lockRepo(repoDir: string, timeoutMs: number): Promise<RepoLock> {
    await fsp.mkdir(repoDir, { recursive: true });
    return takeLock(path.join(repoDir, LOCK_FILE), timeoutMs);
}
