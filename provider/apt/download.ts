/**
 * The download step of a mirror update: brings every selected `.deb` into the pool.
 *
 * Each file is streamed to a temporary name beside its place, checked against the size and
 * SHA256 of its (signed) index record while it streams, and renamed into place only when it
 * matches; so a pool file is either absent or verified. A file already in the pool with the
 * right size and SHA256 is kept and not downloaded again, which makes a run killed half-way
 * resume where it stopped. Memory does not grow with the number or size of the packages: a
 * fixed number of workers pull from the list and only counters are kept.
 */

import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Dispatcher } from "undici";
import { AirgapError, type AirgapErrorCode, invalidArgument, isAirgapError } from "../errors";
import { createDispatcher, type HttpOptions, joinUrl, type RetryOptions } from "../http/client";
import { downloadToFile } from "../http/download";
import { HashMemo } from "../store/hashcache";
import { unsafePathReason } from "./control";
import type { PackageRecord } from "./types";
import { forEachLimited } from "../store/concurrency";

/** The fields of a package the download needs. */
export type PackageFile = Pick<PackageRecord, "filename" | "size" | "sha256">;

export interface DownloadProgress {
    /** Files checked or downloaded so far, of `filesTotal`. */
    readonly filesDone: number;
    readonly filesTotal: number;
    /** Bytes of finished files (downloaded or reused), of `bytesTotal`. */
    readonly bytesDone: number;
    readonly bytesTotal: number;
    /** Bytes received from the network so far, partial files included. */
    readonly bytesReceived: number;
    /** Received bytes per second since the previous report. */
    readonly bytesPerSecond: number;
    /** Milliseconds since the download started. */
    readonly elapsedMs?: number;
    /** True for the last report, once every file is done. */
    readonly final?: boolean;
    readonly downloaded: number;
    readonly reused: number;
    readonly failed: number;
}

export interface DownloadPackagesOptions {
    /** Repository root the `Filename`s are relative to. */
    readonly baseUrl: string;
    readonly packages: readonly PackageFile[];
    /** Directory the files are placed under (`<poolDir>/<Filename>`, or as `targetOf` says). */
    readonly poolDir: string;
    /**
     * Where a package goes, relative to `poolDir`. Defaults to its `Filename`. MUST give
     * different paths to different contents; packages sharing a path are fetched once.
     */
    readonly targetOf?: (pkg: PackageFile) => string;
    /** Downloads at once, and connections when no dispatcher is given. Defaults to 4. */
    readonly concurrency?: number;
    /** Defaults to an agent made for this call with `concurrency` connections, closed at the end. */
    readonly dispatcher?: Dispatcher;
    readonly retry?: RetryOptions;
    readonly headers?: Readonly<Record<string, string>>;
    /** Stops starting new downloads and aborts those running. */
    readonly signal?: AbortSignal;
    /** Called every `progressIntervalMs` while running, and once at the end. MUST NOT throw. */
    readonly onProgress?: (progress: DownloadProgress) => void;
    /** Defaults to 1000 ms. */
    readonly progressIntervalMs?: number;
    /** Failures listed in the error message; the rest are counted. Defaults to 10. */
    readonly maxReportedFailures?: number;
    /**
     * Verified hashes of files already in the pool, so that a file checked by an earlier run
     * (same inode, size, mtime and ctime) is not read again. Defaults to hashing every file.
     */
    readonly hashMemo?: HashMemo;
}

export interface DownloadPackagesResult {
    readonly downloaded: number;
    /** Bytes received, retried attempts included. */
    readonly downloadedBytes: number;
    /** Files already in the pool with the right size and SHA256. */
    readonly reused: number;
    readonly reusedBytes: number;
}

/** True when `file` exists with exactly this size and SHA256 (through `memo` when given). */
export async function isVerifiedFile(file: string, size: number, sha256: string, memo?: HashMemo): Promise<boolean> {
    return (memo ?? HashMemo.inMemory()).isVerified(file, size, sha256);
}

/**
 * Downloads the packages not yet in the pool. Continues past failed files so that one bad file
 * does not hold back the rest, then throws one `AirgapError` listing the failures (its code is
 * that of the first failure: `ERR_VERIFICATION`, `ERR_NOT_FOUND`, `ERR_NETWORK`, ...). A failed
 * file leaves nothing in the pool.
 */
export async function downloadPackages(options: DownloadPackagesOptions): Promise<DownloadPackagesResult> {
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw invalidArgument("concurrency", `must be a positive integer, got ${concurrency}`);
    }
    const { packages, poolDir } = options;
    packages.forEach((pkg, i) => {
        const unsafe = unsafePathReason(pkg.filename);
        if (unsafe !== undefined) {
            throw invalidArgument(`packages[${i}].filename`, `${JSON.stringify(pkg.filename)} ${unsafe}`);
        }
    });
    const ownDispatcher = options.dispatcher === undefined ? createDispatcher({ connections: concurrency }) : undefined;
    const http: HttpOptions = {
        dispatcher: options.dispatcher ?? ownDispatcher,
        retry: options.retry,
        headers: options.headers,
        signal: options.signal,
    };

    let bytesTotal = 0;
    for (const pkg of packages) {
        bytesTotal += pkg.size;
    }
    const counts = {
        filesDone: 0,
        bytesDone: 0,
        bytesReceived: 0,
        downloaded: 0,
        downloadedBytes: 0,
        reused: 0,
        reusedBytes: 0,
        failed: 0,
    };
    const failures: string[] = [];
    let firstFailure: unknown;
    const maxReported = options.maxReportedFailures ?? 10;
    // Workers skip a file another worker is fetching, then check it once that one is done.
    const inFlight = new Map<string, Promise<void>>();
    const targetOf = options.targetOf ?? ((pkg: PackageFile) => pkg.filename);

    const started = Date.now();
    let lastReport = { at: started, bytes: 0 };
    const report = (final = false) => {
        const now = Date.now();
        const seconds = Math.max(0.001, (now - lastReport.at) / 1000);
        const rate = (counts.bytesReceived - lastReport.bytes) / seconds;
        lastReport = { at: now, bytes: counts.bytesReceived };
        options.onProgress?.({
            filesDone: counts.filesDone,
            filesTotal: packages.length,
            bytesDone: counts.bytesDone,
            bytesTotal,
            bytesReceived: counts.bytesReceived,
            bytesPerSecond: Math.round(rate),
            downloaded: counts.downloaded,
            reused: counts.reused,
            failed: counts.failed,
            elapsedMs: now - started,
            final,
        });
    };
    const timer =
        options.onProgress === undefined ? undefined : setInterval(() => report(), options.progressIntervalMs ?? 1000);
    timer?.unref();

    // Each directory is made once, however many packages it holds.
    const directories = new Map<string, Promise<unknown>>();
    const directory = (dir: string): Promise<unknown> => {
        let made = directories.get(dir);
        if (made === undefined) {
            // Synchronous: cheaper than a thread-pool round trip, and done once per directory.
            made = Promise.resolve(mkdirSync(dir, { recursive: true }));
            directories.set(dir, made);
        }
        return made;
    };

    const one = async (pkg: PackageFile): Promise<void> => {
        const target = join(poolDir, targetOf(pkg));
        if (await isVerifiedFile(target, pkg.size, pkg.sha256, options.hashMemo)) {
            counts.reused++;
            counts.reusedBytes += pkg.size;
            return;
        }
        const url = joinUrl(options.baseUrl, pkg.filename);
        await directory(dirname(target));
        const result = await downloadToFile(url, target, {
            ...http,
            createDirectory: false,
            expected: { size: pkg.size, sha256: pkg.sha256 },
            onBytes: (n) => {
                counts.bytesReceived += n;
            },
        });
        // Verified while it streamed: the publish step links it without reading it again.
        options.hashMemo?.record(target, pkg.sha256);
        counts.downloaded++;
        counts.downloadedBytes += result.bytesReceived;
    };

    const downloadOne = async (pkg: (typeof packages)[number]): Promise<void> => {
        const key = targetOf(pkg);
        let running = inFlight.get(key);
        while (running !== undefined) {
            await running;
            running = inFlight.get(key);
        }
        const task = one(pkg).then(
            () => {
                counts.bytesDone += pkg.size;
            },
            (err: unknown) => {
                counts.failed++;
                firstFailure ??= err;
                if (failures.length < maxReported) {
                    failures.push(`${pkg.filename}: ${err instanceof Error ? err.message : String(err)}`);
                }
            },
        );
        inFlight.set(key, task);
        await task;
        inFlight.delete(key);
        counts.filesDone++;
    };

    try {
        await forEachLimited(packages, concurrency, downloadOne, { signal: options.signal });
    } finally {
        if (timer !== undefined) {
            clearInterval(timer);
        }
        await ownDispatcher?.close();
    }
    options.signal?.throwIfAborted();
    report(true);
    if (counts.failed > 0) {
        const code: AirgapErrorCode = isAirgapError(firstFailure) ? firstFailure.code : "ERR_IO";
        const more = counts.failed > failures.length ? `\n  ... and ${counts.failed - failures.length} more` : "";
        const summary = `${counts.failed} of ${packages.length} package files could not be downloaded from ${options.baseUrl}`;
        throw new AirgapError(code, `${summary}:\n  ${failures.join("\n  ")}${more}`, { cause: firstFailure });
    }
    return {
        downloaded: counts.downloaded,
        downloadedBytes: counts.downloadedBytes,
        reused: counts.reused,
        reusedBytes: counts.reusedBytes,
    };
}
