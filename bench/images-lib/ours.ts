/**
 * The engine's side of the benchmark, run as a child process (so its wall time and peak RSS are
 * measured exactly like skopeo's): `node lib/bench/images-lib/ours.js JOB.json RESULT.json`.
 *
 * It does what a sync does: open every source and destination (destinations named by the same
 * string are opened once, so one archive or layout takes every image before a single commit),
 * copy with `copyImages`, commit, close. Registry sources and destinations share one
 * `BlobLocationCache`, so blobs shared between repositories are mounted, as skopeo does.
 */

import { readFile, writeFile } from "node:fs/promises";
import { Agent } from "undici";
import { copyImages, type CopyImageRequest } from "../../provider/oci/copy";
import { openImageDestination, openImageSource, type OpenImageOptions } from "../../provider/oci/open";
import { BlobLocationCache } from "../../provider/oci/registry_transport";
import type { ImageDestination, ImageSource } from "../../provider/oci/types";

export interface OursJob {
    readonly pairs: readonly { readonly from: string; readonly to: string; readonly tag?: string }[];
    /** Blobs at a time; the engine's default when absent. */
    readonly concurrency?: number;
    /** Images at a time; the engine's default when absent. */
    readonly imageConcurrency?: number;
    /**
     * One undici `Agent` for every registry client, so connections are reused across images.
     * Otherwise each opened source and destination has a client with an agent of its own.
     */
    readonly sharedAgent?: boolean;
}

export interface OursImageResult {
    readonly source: string;
    readonly ok: boolean;
    readonly sourceDigest?: string;
    readonly manifests?: readonly string[];
    readonly bytes: number;
    readonly blobsCopied: number;
    readonly blobsSkipped: number;
    readonly error?: string;
}

export interface OursResult {
    readonly images: readonly OursImageResult[];
    /** Inside the process: copy, then commit + close. */
    readonly copyMs: number;
    readonly commitMs: number;
}

export async function runJob(job: OursJob): Promise<OursResult> {
    const agent = job.sharedAgent === true ? new Agent() : undefined;
    const open: OpenImageOptions = {
        registry: { insecure: "http", ...(agent === undefined ? {} : { dispatcher: agent }) },
        blobLocations: new BlobLocationCache(),
    };
    const sources: ImageSource[] = [];
    const destinations = new Map<string, ImageDestination>();
    const started = process.hrtime.bigint();
    try {
        const requests: CopyImageRequest[] = [];
        for (const pair of job.pairs) {
            const source = await openImageSource(pair.from, open);
            sources.push(source);
            let destination = destinations.get(pair.to);
            if (destination === undefined) {
                destination = await openImageDestination(pair.to, open);
                destinations.set(pair.to, destination);
            }
            requests.push({ source, destination, ...(pair.tag === undefined ? {} : { tag: pair.tag }) });
        }
        const entries = await copyImages(requests, {
            ...(job.concurrency === undefined ? {} : { concurrency: job.concurrency }),
            ...(job.imageConcurrency === undefined ? {} : { imageConcurrency: job.imageConcurrency }),
        });
        const copied = process.hrtime.bigint();
        for (const d of destinations.values()) {
            await d.commit();
        }
        const committed = process.hrtime.bigint();
        return {
            images: entries.map((e, i): OursImageResult => {
                if (!e.ok) {
                    const error = e.error as { message?: string; cause?: { message?: string } };
                    return {
                        source: job.pairs[i]!.from,
                        ok: false,
                        bytes: 0,
                        blobsCopied: 0,
                        blobsSkipped: 0,
                        error: `${error.message ?? String(e.error)}${error.cause?.message ? `: ${error.cause.message}` : ""}`,
                    };
                }
                const r = e.result;
                return {
                    source: r.source,
                    ok: true,
                    sourceDigest: r.sourceDigest,
                    manifests: r.manifests,
                    bytes: r.bytes,
                    blobsCopied: r.blobsCopied,
                    blobsSkipped: r.blobsSkipped,
                };
            }),
            copyMs: Number(copied - started) / 1e6,
            commitMs: Number(committed - copied) / 1e6,
        };
    } finally {
        await Promise.allSettled(sources.map((s) => s.close()));
        await Promise.allSettled([...destinations.values()].map((d) => d.close()));
        await agent?.close();
    }
}

async function main(argv: readonly string[]): Promise<void> {
    const [jobPath, resultPath] = argv;
    if (jobPath === undefined || resultPath === undefined) {
        throw new Error("usage: node lib/bench/images-lib/ours.js JOB.json RESULT.json");
    }
    const job = JSON.parse(await readFile(jobPath, "utf8")) as OursJob;
    const result = await runJob(job);
    await writeFile(resultPath, JSON.stringify(result));
    const failed = result.images.filter((r) => !r.ok);
    if (failed.length > 0) {
        process.stderr.write(failed.map((f) => `${f.source}: ${f.error}`).join("\n"));
        process.exitCode = 1;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((err: unknown) => {
        process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
    });
}
