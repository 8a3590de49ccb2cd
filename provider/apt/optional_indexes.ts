/**
 * The optional parts of an AptMirror sync, off by default: source packages (`withSources`),
 * `Contents` indexes (`contents`) and debian-installer packages (`udebs`, resolved here at sync
 * time against the verified debian-installer indexes; they are not part of the lock). `syncMirror` calls
 * `prepareOptionalIndexes` after the binaries are downloaded and passes what it returns to
 * `publishRepo`.
 */

import * as path from "node:path";
import type { Dispatcher } from "undici";
import { AirgapError, isAirgapError } from "../errors";
import type { HashMemo } from "../store/hashcache";
import { toPackageRecord } from "./control";
import { type DownloadProgress, downloadPackages } from "./download";
import { fetchControlIndexes, indexDirOf } from "./fetch_indexes";
import type { FetchedRelease } from "./fetch_release";
import type { PublishOptions } from "./publish_plan";
import { indexCandidates } from "./release";
import { resolve } from "./resolver";
import { downloadSources, fetchSourceIndexes, selectSources, sourcePoolFiles } from "./sources";
import type { PackageRecord } from "./types";

/** The inputs that choose the optional indexes. */
export interface OptionalIndexesSpec {
    withSources?: boolean;
    contents?: boolean;
    /** debian-installer package queries (aptly syntax), resolved with their dependencies among udebs. */
    udebs?: string[];
}

/** The part of the sync inputs the optional indexes add (undefined when none is asked for). */
export function optionalIndexesInputs(spec: OptionalIndexesSpec): Record<string, unknown> | undefined {
    const out: Record<string, unknown> = {};
    if (spec.withSources === true) {
        out.withSources = true;
    }
    if (spec.contents === true) {
        out.contents = true;
    }
    if (Array.isArray(spec.udebs) && spec.udebs.length > 0) {
        out.udebs = spec.udebs;
    }
    return Object.keys(out).length === 0 ? undefined : out;
}

export interface PreparedOptionalIndexes {
    /** What to add to `publishRepo`'s options. */
    readonly publish: Pick<PublishOptions, "sources" | "contents" | "udebs">;
    /** Downloads (names in the download directory) to keep after the publish. */
    readonly keep: readonly string[];
    /** Pool paths and SHA256 of the extra pool files, for the sync stamp. */
    readonly poolFiles: readonly [string, string][];
}

/**
 * Fetches and verifies what the optional indexes need: the `Sources` indexes and the source
 * packages of `records` (into `downloads`, named by `nameOf`).
 */
export async function prepareOptionalIndexes(
    spec: OptionalIndexesSpec,
    upstream: { release: FetchedRelease; components: readonly string[]; architectures: readonly string[] },
    records: readonly PackageRecord[],
    io: {
        downloads: string;
        nameOf: (file: { filename: string; sha256: string }) => string;
        concurrency: number;
        cacheDir?: string;
        dispatcher?: Dispatcher;
        onProgress?: (p: DownloadProgress) => void;
        hashMemo?: HashMemo;
    },
): Promise<PreparedOptionalIndexes> {
    const publish: {
        -readonly [K in keyof PreparedOptionalIndexes["publish"]]: PreparedOptionalIndexes["publish"][K];
    } = {};
    const keep: string[] = [];
    const poolFiles: [string, string][] = [];
    if (spec.withSources === true) {
        const indexes = await fetchSourceIndexes({
            release: upstream.release,
            components: upstream.components,
            architectures: upstream.architectures,
            cacheDir: io.cacheDir,
            dispatcher: io.dispatcher,
        });
        const selected = selectSources(indexes, records);
        const downloaded = await downloadSources({
            baseUrl: upstream.release.url,
            sources: selected,
            dir: io.downloads,
            nameOf: io.nameOf,
            concurrency: io.concurrency,
            dispatcher: io.dispatcher,
            onProgress: io.onProgress,
            hashMemo: io.hashMemo,
        });
        publish.sources = downloaded.sources;
        keep.push(...downloaded.names);
        for (const [target, file] of sourcePoolFiles(downloaded.sources)) {
            poolFiles.push([target, file.sha256]);
        }
    }
    if (spec.contents === true) {
        publish.contents = true;
    }
    if (Array.isArray(spec.udebs) && spec.udebs.length > 0) {
        const udebs = await resolveUdebs(spec.udebs, upstream, io);
        await downloadPackages({
            baseUrl: upstream.release.url,
            packages: udebs,
            poolDir: io.downloads,
            targetOf: io.nameOf,
            concurrency: io.concurrency,
            dispatcher: io.dispatcher,
            onProgress: io.onProgress,
            progressIntervalMs: 5000,
            hashMemo: io.hashMemo,
        });
        publish.udebs = udebs.map((record) => ({
            record,
            file: path.join(io.downloads, io.nameOf(record)),
            udeb: true,
        }));
        keep.push(...udebs.map(io.nameOf));
    }
    return { publish, keep, poolFiles };
}

/** The inputs of the optional indexes; a change to one is an update. */
export const OPTIONAL_INDEX_KEYS = ["withSources", "contents", "udebs"] as const;

/** Problems with the optional-index inputs, each naming its argument. */
export function optionalIndexesProblems(spec: {
    withSources?: unknown;
    contents?: unknown;
    udebs?: unknown;
}): { argument: string; problem: string }[] {
    const problems: { argument: string; problem: string }[] = [];
    for (const key of ["withSources", "contents"] as const) {
        const value = spec[key];
        if (value !== undefined && typeof value !== "boolean") {
            problems.push({ argument: key, problem: `must be true or false, got ${JSON.stringify(value)}` });
        }
    }
    const udebs = spec.udebs;
    if (udebs !== undefined && (!Array.isArray(udebs) || udebs.some((q) => typeof q !== "string" || q.trim() === ""))) {
        problems.push({ argument: "udebs", problem: 'must be a list of package queries, e.g. ["busybox-udeb"]' });
    }
    return problems;
}

/**
 * The udebs the queries select, with their dependencies among udebs, from the verified
 * `<component>/debian-installer/binary-<arch>/Packages` indexes. Throws ERR_INVALID_ARGUMENT
 * naming `udebs` when the upstream offers no debian-installer index for an architecture.
 */
async function resolveUdebs(
    queries: readonly string[],
    upstream: { release: FetchedRelease; components: readonly string[]; architectures: readonly string[] },
    io: { cacheDir?: string; dispatcher?: Dispatcher },
): Promise<PackageRecord[]> {
    const release = upstream.release.release;
    const targets: { component: string; architecture: string; basePath: string }[] = [];
    for (const architecture of upstream.architectures) {
        const offered = upstream.components
            .map((component) => ({
                component,
                architecture,
                basePath: `${indexDirOf(release, component, upstream.architectures)}/debian-installer/binary-${architecture}/Packages`,
            }))
            .filter((t) => indexCandidates(release, t.basePath).length > 0);
        if (offered.length === 0) {
            throw new AirgapError(
                "ERR_INVALID_ARGUMENT",
                `udebs: ${upstream.release.suiteUrl} offers no debian-installer packages for architecture ${architecture} (the Release lists no <component>/debian-installer/binary-${architecture}/Packages in ${upstream.components.join(", ")})`,
                { argument: "udebs" },
            );
        }
        targets.push(...offered);
    }
    const { records } = await fetchControlIndexes(
        { release: upstream.release, cacheDir: io.cacheDir, dispatcher: io.dispatcher },
        targets,
        toPackageRecord,
    );
    const seen = new Set<string>();
    const unique = records.filter((r) => {
        const key = `${r.name}_${r.version}_${r.architecture}`;
        if (seen.has(key)) {
            return false;
        }
        seen.add(key);
        return true;
    });
    try {
        return [
            ...resolve({
                packages: unique,
                queries,
                architectures: upstream.architectures,
                withDeps: true,
                origin: `${upstream.release.suiteUrl} debian-installer`,
            }).packages,
        ];
    } catch (err) {
        if (isAirgapError(err) && err.argument?.startsWith("packages") === true) {
            throw new AirgapError(err.code, `udebs: ${err.message}`, {
                argument: err.argument.replace(/^packages/, "udebs"),
                cause: err,
            });
        }
        throw err;
    }
}
