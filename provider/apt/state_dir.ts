/**
 * Where a mirror's engine state lives: verified downloads, the index cache, sync stamps, hash
 * memos and locks. Never inside the served tree (a web server or a mirror VM image would carry
 * it), and kept per suite: several AptMirrors may publish suites under one prefix, sharing its
 * pool, and each keeps (and removes) only its own.
 *
 *     <stateDir>/                       default `<root>.airgap`, a sibling of the root
 *         indexes/                      index cache, shared by every mirror of the directory
 *         downloads/<prefix>@<suite>/   this suite's verified downloads, hard-linked into the pool
 *         hashes/<prefix>@<suite>       verified hashes of its downloads and pool files
 *         stamps/<prefix>@<suite>       the stamp of its last sync
 *         locks/<prefix>@<suite>.lock   held by the one sync or destroy of the suite at work
 *
 * (`<prefix>` with "/" spelled "__".)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stampFile } from "./stamp";
import type { AptPublishSpec, AptSourceSpec } from "./mirror";

/** What names one published suite: the publish location and the suite. */
export interface SuitePlace {
    publish: Pick<AptPublishSpec, "root" | "prefix" | "stateDir" | "distribution">;
    source: Pick<AptSourceSpec, "distribution">;
}

/**
 * The state directory. Defaults to `<root>.airgap`, a sibling of the root: outside the served
 * tree, and usually on the same file system, so that downloads are hard-linked into the pool
 * rather than copied.
 */
export function stateDirOf(publish: Pick<AptPublishSpec, "root" | "stateDir">): string {
    return path.resolve(publish.stateDir ?? `${path.resolve(publish.root)}.airgap`);
}

/** The problem with a state directory for `root`, if any: it must not be inside the served tree. */
export function stateDirProblem(publish: Pick<AptPublishSpec, "root" | "stateDir">): string | undefined {
    const root = path.resolve(publish.root);
    const state = stateDirOf(publish);
    const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith(path.sep) ? b : `${b}${path.sep}`);
    if (inside(state, root) || inside(root, state)) {
        return publish.stateDir === undefined
            ? `the default state directory ${state} would be inside the served tree ${root}: give publish.stateDir`
            : `"${publish.stateDir}" must be outside publish.root ("${publish.root}"), which is served`;
    }
    return undefined;
}

const flat = (prefix: string) => prefix.replace(/\//g, "__") || "_";

/** The suite's name in the state directory: `<prefix>@<suite>`. */
export function suiteStateName(place: SuitePlace): string {
    return `${flat(place.publish.prefix)}@${place.publish.distribution ?? place.source.distribution}`;
}

/** `<stateDir>/indexes`: the index cache shared by every mirror with this state directory. */
export function indexCacheDir(publish: Pick<AptPublishSpec, "root" | "stateDir">): string {
    return path.join(stateDirOf(publish), "indexes");
}

/** `<stateDir>/downloads/<prefix>@<suite>`: the suite's verified downloads. */
export function downloadDir(place: SuitePlace): string {
    return path.join(stateDirOf(place.publish), "downloads", suiteStateName(place));
}

/** `<stateDir>/hashes/<prefix>@<suite>`: verified hashes of the suite's downloads and pool files. */
export function hashMemoFile(place: SuitePlace): string {
    return path.join(stateDirOf(place.publish), "hashes", suiteStateName(place));
}

/** `<stateDir>/stamps/<prefix>@<suite>`. */
export function suiteStampFile(place: SuitePlace): string {
    return stampFile(stateDirOf(place.publish), suiteStateName(place));
}

/** `<stateDir>/locks/<prefix>@<suite>.lock`. */
export function mirrorLockFile(place: SuitePlace): string {
    return path.join(stateDirOf(place.publish), "locks", `${suiteStateName(place)}.lock`);
}

/**
 * Moves the state older versions kept under `<root>/.airgap` (inside the served tree) to the
 * default state directory: one rename, so that an upgrade neither serves engine state nor
 * downloads again. Only for the default: a chosen directory may be shared with other roots.
 */
export function adoptLegacyStateDir(publish: Pick<AptPublishSpec, "root" | "stateDir">): void {
    const legacy = path.join(publish.root, ".airgap");
    if (publish.stateDir === undefined && fs.existsSync(legacy) && !fs.existsSync(stateDirOf(publish))) {
        try {
            fs.renameSync(legacy, stateDirOf(publish));
        } catch {
            // Another file system: start afresh (downloads and pool files are verified again).
        }
    }
}

/**
 * Takes over the state older versions kept: in the served tree (`adoptLegacyStateDir`), and per
 * prefix rather than per suite (renamed to this suite's names: a prefix then held one suite).
 */
export function adoptLegacyState(place: SuitePlace): void {
    const { publish } = place;
    adoptLegacyStateDir(publish);
    const stateDir = stateDirOf(publish);
    for (const kind of ["downloads", "hashes", "stamps"]) {
        const old = path.join(stateDir, kind, flat(publish.prefix));
        const now = path.join(stateDir, kind, suiteStateName(place));
        if (fs.existsSync(old) && !fs.existsSync(now)) {
            try {
                fs.renameSync(old, now);
            } catch {
                // Taken by another suite's run meanwhile: this one starts afresh.
            }
        }
    }
}

/** Removes the state directory's folders left empty (the last suite gone), and the directory. */
export function removeEmptyStateDirs(publish: Pick<AptPublishSpec, "root" | "stateDir">): void {
    const stateDir = stateDirOf(publish);
    for (const dir of ["locks", "stamps", "downloads", "hashes", ""]) {
        try {
            fs.rmdirSync(path.join(stateDir, dir));
        } catch {
            // Not empty: another suite's, or the shared index cache.
        }
    }
}
