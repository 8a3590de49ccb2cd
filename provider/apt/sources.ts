/**
 * Source packages beside the binaries (`withSources`): the upstream `Sources` indexes of the
 * requested components, the source package of every binary in the lock (its `Source:` field,
 * else its own name; the version from `Source: name (version)`, else the binary's), each file
 * checked against the signed `Checksums-Sha256`, and the `Sources` index the mirror publishes.
 *
 *     fetchSourceIndexes → selectSources → downloadSources → publishRepo({ sources })
 *
 * A source package is published under the pool directory its binaries use,
 * `pool/<component>/<prefix>/<source>/`, so `apt-get source` finds it where Debian's archive
 * would put it.
 */

import * as path from "node:path";
import type { Dispatcher } from "undici";
import { AirgapError, invalidArgument } from "../errors";
import type { HashMemo } from "../store/hashcache";
import { formatStanza, unsafePathReason } from "./control";
import { type DownloadProgress, downloadPackages, type PackageFile } from "./download";
import { fetchControlIndexes, indexDirOf } from "./fetch_indexes";
import type { FetchedRelease } from "./fetch_release";
import { poolPrefix } from "./pool";
import { indexCandidates } from "./release";
import type { PackageRecord, Stanza } from "./types";
import { parseVersion } from "./version";

/** One file of a source package, as the signed `Checksums-Sha256` lists it. */
export interface SourceFile {
    readonly name: string;
    readonly size: number;
    /** Lower-case hex. */
    readonly sha256: string;
}

/** A source package from a `Sources` index. */
export interface SourceRecord {
    readonly name: string;
    readonly version: string;
    readonly component: string;
    /** Upstream directory of its files, relative to the repository root. */
    readonly directory: string;
    readonly files: readonly SourceFile[];
    readonly stanza: Stanza;
}

function fieldError(pkg: string, field: string, problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `source package ${JSON.stringify(pkg)}: field ${field} ${problem}`);
}

const SOURCE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/;

/** Reads a `Sources` stanza; ERR_PARSE naming the package and the field when it is malformed or unsafe. */
export function toSourceRecord(stanza: Stanza, component: string): SourceRecord {
    const name = stanza.get("Package") ?? "";
    if (!SOURCE_NAME.test(name)) {
        throw fieldError(name || "(no Package)", "Package", "is not a valid source package name");
    }
    const version = stanza.get("Version") ?? "";
    try {
        parseVersion(version);
    } catch (cause) {
        throw fieldError(name, "Version", (cause as Error).message);
    }
    const directory = stanza.get("Directory") ?? "";
    const unsafe = directory === "" ? "is empty" : unsafePathReason(directory);
    if (unsafe !== undefined) {
        throw fieldError(name, "Directory", `${JSON.stringify(directory)} ${unsafe}; refusing a path outside the pool`);
    }
    const listed = stanza.get("Checksums-Sha256");
    if (listed === undefined) {
        throw fieldError(name, "Checksums-Sha256", "is missing: the files cannot be verified");
    }
    const files: SourceFile[] = [];
    for (const line of listed.split("\n")) {
        if (line.trim() === "") {
            continue;
        }
        const m = /^\s*([0-9A-Fa-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
        if (m === null || !FILE_NAME.test(m[3]) || !Number.isSafeInteger(Number(m[2]))) {
            throw fieldError(
                name,
                "Checksums-Sha256",
                `has a line that is not "sha256 size name": ${JSON.stringify(line)}`,
            );
        }
        files.push({ sha256: m[1].toLowerCase(), size: Number(m[2]), name: m[3] });
    }
    if (files.length === 0) {
        throw fieldError(name, "Checksums-Sha256", "lists no file");
    }
    return { name, version, component, directory: directory.replace(/\/+$/, ""), files, stanza };
}

/**
 * The `Sources` indexes of the components, verified and parsed. Throws ERR_INVALID_ARGUMENT
 * naming `withSources` and the component when the Release lists none for it.
 */
export async function fetchSourceIndexes(options: {
    release: FetchedRelease;
    components: readonly string[];
    architectures: readonly string[];
    cacheDir?: string;
    dispatcher?: Dispatcher;
}): Promise<SourceRecord[]> {
    const targets = options.components.map((component) => {
        const dir = indexDirOf(options.release.release, component, options.architectures);
        const basePath = `${dir}/source/Sources`;
        if (indexCandidates(options.release.release, basePath).length === 0) {
            throw invalidArgument(
                "withSources",
                `${options.release.suiteUrl}: the Release lists no Sources index for component ${component} (${basePath}); this upstream offers no source packages there`,
            );
        }
        return { component, architecture: "source", basePath };
    });
    const { records } = await fetchControlIndexes(
        { release: options.release, cacheDir: options.cacheDir, dispatcher: options.dispatcher },
        targets,
        toSourceRecord,
    );
    return records;
}

/**
 * The source package of every binary, once each. Throws ERR_NOT_FOUND naming `withSources` and
 * every binary whose source is not in the `Sources` index of its component.
 */
export function selectSources(sources: readonly SourceRecord[], binaries: readonly PackageRecord[]): SourceRecord[] {
    const byKey = new Map<string, SourceRecord>();
    for (const s of sources) {
        const key = `${s.component}\0${s.name}\0${s.version}`;
        if (!byKey.has(key)) {
            byKey.set(key, s);
        }
    }
    const selected = new Map<string, SourceRecord>();
    const missing: string[] = [];
    for (const b of binaries) {
        const key = `${b.component}\0${b.source}\0${b.sourceVersion}`;
        const found = byKey.get(key);
        if (found === undefined) {
            missing.push(`${b.name} ${b.version} (source ${b.source} ${b.sourceVersion}, component ${b.component})`);
        } else {
            selected.set(key, found);
        }
    }
    if (missing.length > 0) {
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `withSources: the upstream Sources indexes have no source package for ${missing.join(", ")}`,
            { argument: "withSources" },
        );
    }
    return [...selected.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The pool directory of a source package, as its binaries' (`pool/main/o/openssl`). */
export function sourcePoolDir(record: Pick<SourceRecord, "component" | "name">): string {
    return `pool/${record.component}/${poolPrefix(record.name)}/${record.name}`;
}

/** A source file as a download: its upstream path and signed hash. */
function asDownload(record: SourceRecord, file: SourceFile): PackageFile {
    return { filename: `${record.directory}/${file.name}`, size: file.size, sha256: file.sha256 };
}

/** A source package ready to publish: its record and the verified local file of each of its files. */
export interface PublishSource {
    readonly record: SourceRecord;
    /** File name → local path. */
    readonly files: ReadonlyMap<string, string>;
}

/**
 * Downloads the files of the source packages into `dir`, each checked against the signed
 * hash (ERR_VERIFICATION naming the file otherwise). Returns them ready to publish, and the
 * names of the downloads in `dir` (to keep).
 */
export async function downloadSources(options: {
    baseUrl: string;
    sources: readonly SourceRecord[];
    dir: string;
    nameOf: (file: PackageFile) => string;
    concurrency: number;
    dispatcher?: Dispatcher;
    onProgress?: (p: DownloadProgress) => void;
    hashMemo?: HashMemo;
}): Promise<{ sources: PublishSource[]; names: string[] }> {
    const files = options.sources.flatMap((s) => s.files.map((f) => asDownload(s, f)));
    await downloadPackages({
        baseUrl: options.baseUrl,
        packages: files,
        poolDir: options.dir,
        targetOf: options.nameOf,
        concurrency: options.concurrency,
        dispatcher: options.dispatcher,
        onProgress: options.onProgress,
        progressIntervalMs: 5000,
        hashMemo: options.hashMemo,
    });
    return {
        sources: options.sources.map((record) => ({
            record,
            files: new Map(
                record.files.map((f) => [f.name, path.join(options.dir, options.nameOf(asDownload(record, f)))]),
            ),
        })),
        names: files.map(options.nameOf),
    };
}

/** Hash fields a `Sources` entry may carry; only the verified SHA256 is written back. */
const HASH_FIELDS = new Set(["files", "checksums-sha1", "checksums-sha256", "checksums-sha512", "directory"]);

/**
 * The `Sources` entry of a published source package: the upstream stanza with our `Directory`
 * and the signed SHA256 of each file (`Files` with MD5 and the other hashes are left out).
 */
export function publishedSourceStanza(record: SourceRecord): string {
    const fields: [string, string][] = [];
    let at = -1;
    for (const [name, value] of record.stanza.entries()) {
        if (HASH_FIELDS.has(name.toLowerCase())) {
            if (at < 0) {
                at = fields.length;
            }
            continue;
        }
        fields.push([name, value]);
    }
    const sums = record.files.map((f) => `${f.sha256} ${f.size} ${f.name}`).join("\n");
    fields.splice(
        at < 0 ? fields.length : at,
        0,
        ["Directory", sourcePoolDir(record)],
        ["Checksums-Sha256", `\n${sums}`],
    );
    return formatStanza(fields);
}

/** The pool files of the source packages: pool path → the local file and its signed hash. */
export function sourcePoolFiles(
    sources: readonly PublishSource[],
): Map<string, { file: string; sha256: string; size: number; what: string }> {
    const out = new Map<string, { file: string; sha256: string; size: number; what: string }>();
    for (const { record, files } of sources) {
        for (const f of record.files) {
            out.set(`${sourcePoolDir(record)}/${f.name}`, {
                file: files.get(f.name) ?? "",
                sha256: f.sha256,
                size: f.size,
                what: `source ${record.name} ${record.version}`,
            });
        }
    }
    return out;
}

/** The pool files a published `Sources` stanza names, with their SHA256 (for garbage collection). */
export function sourceStanzaFiles(stanza: Stanza): [string, string][] {
    const directory = stanza.get("Directory") ?? "";
    const out: [string, string][] = [];
    for (const line of (stanza.get("Checksums-Sha256") ?? "").split("\n")) {
        const m = /^\s*([0-9A-Fa-f]{64})\s+\d+\s+(\S+)\s*$/.exec(line);
        if (m !== null && directory !== "") {
            out.push([`${directory.replace(/\/+$/, "")}/${m[2]}`, m[1].toLowerCase()]);
        }
    }
    return out;
}
