/**
 * The optional parts of an AptMirror sync, off by default: source packages (`withSources`),
 * `Contents` indexes (`contents`). `syncMirror` calls
 * `prepareOptionalIndexes` after the binaries are downloaded and passes what it returns to
 * `publishRepo`.
 */

import type { Dispatcher } from "undici";
import type { HashMemo } from "../store/hashcache";
import type { DownloadProgress } from "./download";
import type { FetchedRelease } from "./fetch_release";
import type { PublishOptions } from "./publish_plan";
import { downloadSources, fetchSourceIndexes, selectSources, sourcePoolFiles } from "./sources";
import type { PackageRecord } from "./types";

/** The inputs that choose the optional indexes. */
export interface OptionalIndexesSpec {
    withSources?: boolean;
    contents?: boolean;
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

    return Object.keys(out).length === 0 ? undefined : out;
}

export interface PreparedOptionalIndexes {
    /** What to add to `publishRepo`'s options. */
    readonly publish: Pick<PublishOptions, "sources" | "contents">;
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
    return { publish, keep, poolFiles };
}

/** The inputs of the optional indexes; a change to one is an update. */
export const OPTIONAL_INDEX_KEYS = ["withSources", "contents"] as const;

/** Problems with the optional-index inputs, each naming its argument. */
export function optionalIndexesProblems(spec: {
    withSources?: unknown;
    contents?: unknown;
}): { argument: string; problem: string }[] {
    const problems: { argument: string; problem: string }[] = [];
    for (const key of ["withSources", "contents"] as const) {
        const value = spec[key];
        if (value !== undefined && typeof value !== "boolean") {
            problems.push({ argument: key, problem: `must be true or false, got ${JSON.stringify(value)}` });
        }
    }
    return problems;
}
