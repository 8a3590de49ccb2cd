/**
 * One sync by this project's APT engine, in its own process so that its wall time and peak RSS
 * can be measured from outside: the SDK's two steps, `resolveLock` (what a preview does) then
 * `syncMirror` (what `up` does), with the index cache under the publish root as the SDK uses it.
 *
 *     node lib/bench/lib/run-ours.js CONFIG.json
 *
 * CONFIG is a `RunOursConfig`. Prints one line of JSON (`RunOursResult`) on stdout.
 */
import { mkdirSync, readFileSync } from "node:fs";
import {
    type AptMirrorSpec,
    type AptSourceSpec,
    indexCacheDir,
    resolveLock,
    syncMirror,
} from "../../provider/apt/mirror";

export interface RunOursConfig {
    source: AptSourceSpec;
    /** aptly queries, OR'ed. */
    queries: string[];
    withDeps: boolean;
    publish: { root: string; prefix: string };
    signing: { privateKey: string };
}

export interface RunOursResult {
    resolveMs: number;
    syncMs: number;
    packageCount: number;
    publishedPath: string;
}

async function main(configPath: string): Promise<void> {
    const config = JSON.parse(readFileSync(configPath, "utf8")) as RunOursConfig;
    mkdirSync(config.publish.root, { recursive: true });
    const cacheDir = indexCacheDir(config.publish);
    const t0 = performance.now();
    const { lock, upstream } = await resolveLock({
        source: config.source,
        queries: config.queries,
        withDeps: config.withDeps,
        cacheDir,
    });
    const t1 = performance.now();
    const spec: AptMirrorSpec = {
        source: config.source,
        packages: lock,
        publish: config.publish,
        signing: config.signing,
    };
    const state = await syncMirror(spec, { cacheDir, upstream });
    const t2 = performance.now();
    const result: RunOursResult = {
        resolveMs: t1 - t0,
        syncMs: t2 - t1,
        packageCount: state.packageCount,
        publishedPath: state.publishedPath,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
}

const configPath = process.argv[2];
if (configPath === undefined) {
    process.stderr.write("usage: node lib/bench/lib/run-ours.js CONFIG.json\n");
    process.exit(2);
}
main(configPath).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (err instanceof Error && err.cause !== undefined) process.stderr.write(`cause: ${String(err.cause)}\n`);
    process.exit(1);
});
