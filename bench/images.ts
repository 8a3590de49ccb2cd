/**
 * `npm run bench:images`: the image copy engine side by side with skopeo, on a generated set of
 * images in local registries. A measurement that prints ratios, not a test: nothing here fails on
 * time; it fails only when a copy fails.
 *
 * Steps: generate the image set as an OCI layout → push it to a source registry with
 * `skopeo copy --all --preserve-digests` → registry to registry, each contender into a fresh
 * destination registry, cold and then again (no-op) → registry to archive / layout → check every
 * destination's digests → print the tables and the targets.
 *
 * Every contender runs as a child process under GNU time (wall time, peak RSS). Bytes moved are
 * counted the same way for all of them: blob bytes the source registry served (its access log) and
 * the growth of the destination's storage; the engine's own count is printed beside them.
 *
 * Environment: BENCH_IMAGES (30), BENCH_SCALE (1 = layers of 1–4 MiB), BENCH_ROUNDS (1; every
 * measurement that many times, interleaved, into fresh destinations; medians), BENCH_CONCURRENCY and
 * BENCH_IMAGE_CONCURRENCY (the engine's defaults), BENCH_JSON (write the numbers there),
 * BENCH_PROFILE=DIR (an extra cold and no-op engine run with `--cpu-prof` into DIR/cold, DIR/no-op;
 * `node lib/bench/images-lib/profile.js DIR/cold` sums them up).
 */

import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { type RegistryServer, startRegistry } from "../test/harness/servers/registry";
import { cleanupAll, makeTempDir } from "../test/harness/tmp";
import {
    blobBytesServed,
    checkLayout,
    checkRegistry,
    registryBlobBytes,
    skopeo,
    treeBytes,
    unpackArchive,
} from "./images-lib/check";
import { type GeneratedImage, type GeneratedSet, generateImageSet } from "./images-lib/generate";
import { checkTimeTool, findPid, inParallel, processCpuMs, timed, timedSequence } from "./images-lib/measure";
import type { OursJob, OursResult } from "./images-lib/ours";
import { resolveImageLock } from "../provider/oci/lock";
import type { ImageLock, ImageMirrorSpec } from "../provider/oci/mirror_types";
import { mib, ratio, seconds, table } from "./images-lib/report";

interface Settings {
    readonly images: number;
    readonly scale: number;
    /** Rounds of every measurement, each into fresh destinations; medians are reported. */
    readonly rounds: number;
    readonly concurrency?: number;
    readonly imageConcurrency?: number;
    readonly json?: string;
    readonly profileDir?: string;
}

/** What a contender's run reports. */
interface Measured {
    readonly wallMs: number;
    readonly maxRssKiB: number;
    readonly cpuMs: number;
    readonly invocations: number;
    readonly reportedBytes?: number;
}

/** One measured run of one contender. */
interface Run {
    readonly tool: string;
    readonly phase: "cold" | "no-op";
    readonly wallMs: number;
    readonly maxRssKiB: number;
    /** CPU time of the contender's processes (not of the registries). */
    readonly cpuMs: number;
    /** CPU time the source and (for registry destinations) destination registries used meanwhile. */
    readonly registryCpuMs: number;
    /** Blob bytes the source registry served during the run. */
    readonly sourceBytes: number;
    readonly sourceBlobRequests: number;
    /** Growth of the destination (registry blob storage, archive files or layout directory). */
    readonly destinationBytes: number;
    /** The engine's own count of blob bytes moved. */
    readonly reportedBytes?: number;
    readonly invocations: number;
}

interface Outcome {
    readonly tool: string;
    readonly kind: "registry" | "archive";
    readonly runs: Run[];
    readonly problems: string[];
}

function settingsFromEnv(): Settings {
    const int = (name: string): number | undefined => {
        const v = process.env[name];
        if (v === undefined || v === "") return undefined;
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
        return n;
    };
    return {
        images: int("BENCH_IMAGES") ?? 30,
        scale: int("BENCH_SCALE") ?? 1,
        rounds: int("BENCH_ROUNDS") ?? 1,
        concurrency: int("BENCH_CONCURRENCY"),
        imageConcurrency: int("BENCH_IMAGE_CONCURRENCY"),
        json: process.env["BENCH_JSON"] || undefined,
        profileDir: process.env["BENCH_PROFILE"] || undefined,
    };
}

/** The run whose wall time is the median (the lower middle one for an even count). */
function median(runs: readonly Run[]): Run | undefined {
    const sorted = [...runs].sort((a, b) => a.wallMs - b.wallMs);
    return sorted[Math.floor((sorted.length - 1) / 2)];
}

function log(message: string): void {
    process.stderr.write(`[bench:images] ${message}\n`);
}

const OURS_JS = join(__dirname, "images-lib", "ours.js");
/** Our side: the ImageMirror provider's create / update (syncImages), in a process of its own. */
const OURS = "ours (provider syncImages)";

class Bench {
    private source!: RegistryServer;
    private set!: GeneratedSet;
    /** The lock the program resolves (`resolveImageLock`, as the SDK does), keyed by source reference. */
    private lock!: ImageLock;
    private states = 0;
    private readonly outcomes: Outcome[] = [];

    constructor(
        private readonly settings: Settings,
        private readonly scratch: string,
    ) {}

    private get images(): readonly GeneratedImage[] {
        return this.set.images;
    }

    async setup(): Promise<void> {
        const started = Date.now();
        this.set = await generateImageSet(join(this.scratch, "layout"), this.settings);
        const generatedMs = Date.now() - started;
        this.source = await startRegistry();
        await inParallel(this.images, 3, (image) =>
            skopeo([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                `oci:${this.set.layoutDir}:${image.refName}`,
                `docker://${this.source.host}/${image.repository}:${image.tag}`,
            ]),
        );
        const problems = await checkRegistry(this.source.host, this.images);
        if (problems.length > 0) {
            throw new Error(`the source registry does not hold the generated set:\n${problems.join("\n")}`);
        }
        this.lock = await resolveImageLock({
            images: this.images.map((i) => this.sourceRef(i)),
            tls: { insecureRegistries: [this.source.host] },
        });
        log(
            `setup: ${this.images.length} images (${this.images.filter((i) => i.children.length > 0).length} multi-arch), ` +
                `${this.set.blobCount} distinct blobs, ${mib(this.set.blobBytes)} MiB distinct, ` +
                `${mib(this.set.referencedBytes)} MiB referenced; generated in ${seconds(generatedMs)} s, ` +
                `pushed with skopeo in ${seconds(Date.now() - started - generatedMs)} s`,
        );
    }

    private sourceRef(i: GeneratedImage): string {
        return `${this.source.host}/${i.repository}:${i.tag}`;
    }

    /** The ImageMirror inputs of the whole set into `destination`, as the SDK passes them. */
    private inputs(destination: string, insecure: string[] = []): ImageMirrorSpec {
        return {
            images: { ...this.lock },
            destination,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [this.source.host, ...insecure] },
        };
    }

    /** A job with a state file of its own: its first run creates, later runs update. */
    private job(inputs: ImageMirrorSpec): OursJob {
        return { inputs, statePath: join(this.scratch, `ours-state-${++this.states}.json`) };
    }

    /** Runs `body` and counts what the source served and how `destinationBytes` grew meanwhile. */
    private async measure(
        tool: string,
        phase: Run["phase"],
        destinationBytes: () => Promise<number>,
        body: () => Promise<Measured>,
        destination?: RegistryServer,
    ): Promise<Run> {
        const pids: number[] = [];
        for (const r of [this.source, ...(destination === undefined ? [] : [destination])]) {
            const pid = await findPid(join(dirname(r.dataDir), "config.yml"));
            if (pid !== undefined) pids.push(pid);
        }
        const registryCpu = async () => (await Promise.all(pids.map(processCpuMs))).reduce((a, b) => a + b, 0);
        const before = await destinationBytes();
        const logStart = this.source.log().length;
        const cpuBefore = await registryCpu();
        const t = await body();
        const registryCpuMs = (await registryCpu()) - cpuBefore;
        // The access log line is written when the response is done; give the last ones a moment.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const served = blobBytesServed(this.source.log().slice(logStart));
        const run: Run = {
            tool,
            phase,
            wallMs: t.wallMs,
            maxRssKiB: t.maxRssKiB,
            cpuMs: t.cpuMs,
            registryCpuMs,
            sourceBytes: served.bytes,
            sourceBlobRequests: served.requests,
            destinationBytes: (await destinationBytes()) - before,
            ...(t.reportedBytes === undefined ? {} : { reportedBytes: t.reportedBytes }),
            invocations: t.invocations,
        };
        log(
            `${tool} ${phase}: ${seconds(run.wallMs)} s, ${seconds(run.cpuMs)} CPU s (registries ${seconds(registryCpuMs)}), ${Math.round(run.maxRssKiB / 1024)} MiB RSS, ` +
                `source served ${mib(run.sourceBytes)} MiB, destination +${mib(run.destinationBytes)} MiB`,
        );
        return run;
    }

    private async ours(
        job: OursJob,
        profile?: string,
    ): Promise<{
        wallMs: number;
        maxRssKiB: number;
        cpuMs: number;
        invocations: number;
        result: OursResult;
    }> {
        const jobPath = join(this.scratch, "ours-job.json");
        const resultPath = join(this.scratch, "ours-result.json");
        await writeFile(
            jobPath,
            JSON.stringify({
                ...job,
                inputs: {
                    ...job.inputs,
                    ...(this.settings.concurrency === undefined ? {} : { concurrency: this.settings.concurrency }),
                },
            } satisfies OursJob),
        );
        const t = await timed(
            process.execPath,
            [
                ...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]),
                OURS_JS,
                jobPath,
                resultPath,
            ],
            { scratchDir: this.scratch },
        );
        const result = JSON.parse(await readFile(resultPath, "utf8")) as OursResult;
        if (!result.ok) {
            throw new Error(`our provider failed: ${result.error}`);
        }
        return { wallMs: t.wallMs, maxRssKiB: t.maxRssKiB, cpuMs: t.cpuMs, invocations: 1, result };
    }

    /** The record of `tool`'s runs, over every round. */
    private outcome(tool: string, kind: Outcome["kind"]): Outcome {
        let outcome = this.outcomes.find((o) => o.tool === tool);
        if (outcome === undefined) {
            outcome = { tool, kind, runs: [], problems: [] };
            this.outcomes.push(outcome);
        }
        return outcome;
    }

    /** `repository`: where the contender puts an image in the destination registry. */
    private async registryToRegistry(
        tool: string,
        repository: (image: GeneratedImage) => string,
        copy: (dest: RegistryServer) => Promise<Measured>,
    ): Promise<void> {
        const dest = await startRegistry();
        try {
            const storage = () => registryBlobBytes(dest.dataDir);
            const outcome = this.outcome(tool, "registry");
            outcome.runs.push(await this.measure(tool, "cold", storage, () => copy(dest), dest));
            outcome.runs.push(await this.measure(tool, "no-op", storage, () => copy(dest), dest));
            outcome.problems.push(...(await checkRegistry(dest.host, this.images, repository)));
        } finally {
            await dest.stop();
        }
    }

    async registryRuns(): Promise<void> {
        const src = this.source.host;
        const syncFile = join(this.scratch, "sync.yaml");
        // YAML is a superset of JSON.
        await writeFile(
            syncFile,
            JSON.stringify({
                [src]: {
                    "tls-verify": false,
                    images: Object.fromEntries(this.images.map((i) => [i.repository, [i.tag]])),
                },
            }),
        );
        // Without --scoped, skopeo sync names each image by the last component of its source path.
        const lastComponent = (i: GeneratedImage) => `mirror/${i.repository.split("/").pop()}`;
        const sameBelowMirror = (i: GeneratedImage) => `mirror/${i.repository}`;
        await this.registryToRegistry("skopeo sync", lastComponent, async (dest) => {
            const t = await timed(
                "skopeo",
                [
                    "--insecure-policy",
                    "sync",
                    "--all",
                    "--preserve-digests",
                    "--src",
                    "yaml",
                    "--dest",
                    "docker",
                    "--dest-tls-verify=false",
                    syncFile,
                    `${dest.host}/mirror`,
                ],
                { scratchDir: this.scratch },
            );
            return { wallMs: t.wallMs, maxRssKiB: t.maxRssKiB, cpuMs: t.cpuMs, invocations: 1 };
        });
        await this.registryToRegistry(`skopeo copy ×${this.images.length}`, sameBelowMirror, async (dest) => {
            const t = await timedSequence(
                this.images.map((i) => ({
                    cmd: "skopeo",
                    args: [
                        "--insecure-policy",
                        "copy",
                        "--all",
                        "--preserve-digests",
                        "--src-tls-verify=false",
                        "--dest-tls-verify=false",
                        `docker://${src}/${i.repository}:${i.tag}`,
                        `docker://${dest.host}/mirror/${i.repository}:${i.tag}`,
                    ],
                })),
                { scratchDir: this.scratch },
            );
            return { wallMs: t.wallMs, maxRssKiB: t.maxRssKiB, cpuMs: t.cpuMs, invocations: t.runs };
        });
        // One resource per destination registry: created by the cold run, updated by the no-op run.
        const jobs = new Map<RegistryServer, OursJob>();
        const job = (dest: RegistryServer): OursJob => {
            let j = jobs.get(dest);
            if (j === undefined) {
                j = this.job(this.inputs(`docker://${dest.host}/mirror`, [dest.host]));
                jobs.set(dest, j);
            }
            return j;
        };
        await this.registryToRegistry(OURS, sameBelowMirror, async (dest) => this.ours(job(dest)));
    }

    /** A cold and a no-op engine run under `--cpu-prof`, outside the measured rounds. */
    async profile(dir: string): Promise<void> {
        const dest = await startRegistry();
        try {
            const job = this.job(this.inputs(`docker://${dest.host}/mirror`, [dest.host]));
            for (const phase of ["cold", "no-op"]) {
                const t = await this.ours(job, join(dir, phase));
                log(`cpu profile of a ${phase} engine run (${seconds(t.wallMs)} s) written to ${join(dir, phase)}`);
            }
        } finally {
            await dest.stop();
        }
    }

    private async archiveRun(
        tool: string,
        output: string,
        copy: () => Promise<Measured>,
        check: () => Promise<string[]>,
    ): Promise<void> {
        const outcome = this.outcome(tool, "archive");
        outcome.runs.push(await this.measure(tool, "cold", () => treeBytes(output), copy));
        outcome.problems.push(...(await check()));
        await rm(output, { recursive: true, force: true });
    }

    async archiveRuns(): Promise<void> {
        const src = this.source.host;
        const ref = (i: GeneratedImage) => i.refName;
        // The provider names an image in a layout or archive by its full source name and tag.
        const oursRef = (i: GeneratedImage) => this.sourceRef(i);
        const skopeoCopy = (to: (i: GeneratedImage) => string) =>
            timedSequence(
                this.images.map((i) => ({
                    cmd: "skopeo",
                    args: [
                        "--insecure-policy",
                        "copy",
                        "--all",
                        "--preserve-digests",
                        "--src-tls-verify=false",
                        `docker://${src}/${i.repository}:${i.tag}`,
                        to(i),
                    ],
                })),
                { scratchDir: this.scratch },
            ).then((t) => ({ wallMs: t.wallMs, maxRssKiB: t.maxRssKiB, cpuMs: t.cpuMs, invocations: t.runs }));
        const unpackAndCheck = async (
            archives: readonly { file: string; images: readonly GeneratedImage[] }[],
            refName: (i: GeneratedImage) => string = ref,
        ) => {
            const problems: string[] = [];
            for (const [n, a] of archives.entries()) {
                const dir = join(this.scratch, `unpacked-${n}`);
                await unpackArchive(a.file, dir);
                problems.push(...(await checkLayout(dir, a.images, refName)));
                await rm(dir, { recursive: true, force: true });
            }
            return problems;
        };

        const perImage = join(this.scratch, "skopeo-archives");
        // skopeo 1.9 does not create the directory of an oci-archive.
        await mkdir(perImage, { recursive: true });
        await this.archiveRun(
            `skopeo copy ×${this.images.length} → oci-archive each`,
            perImage,
            () => skopeoCopy((i) => `oci-archive:${join(perImage, `${i.refName}.tar`)}:${i.refName}`),
            () => unpackAndCheck(this.images.map((i) => ({ file: join(perImage, `${i.refName}.tar`), images: [i] }))),
        );
        const skopeoLayout = join(this.scratch, "skopeo-layout");
        await this.archiveRun(
            `skopeo copy ×${this.images.length} → one oci: layout`,
            skopeoLayout,
            () => skopeoCopy((i) => `oci:${skopeoLayout}:${i.refName}`),
            () => checkLayout(skopeoLayout, this.images, ref),
        );
        const oursArchiveDir = join(this.scratch, "ours-archive");
        const oursArchive = join(oursArchiveDir, "images.tar");
        await this.archiveRun(
            "ours → one oci-archive",
            oursArchiveDir,
            () => this.ours(this.job(this.inputs(`oci-archive:${oursArchive}`))),
            () => unpackAndCheck([{ file: oursArchive, images: this.images }], oursRef),
        );
        const oursLayout = join(this.scratch, "ours-layout");
        await this.archiveRun(
            "ours → one oci: layout",
            oursLayout,
            () => this.ours(this.job(this.inputs(`oci:${oursLayout}`))),
            () => checkLayout(oursLayout, this.images, oursRef),
        );
    }

    report(): boolean {
        const find = (tool: string, phase: Run["phase"] = "cold") =>
            median(this.outcomes.find((o) => o.tool === tool)?.runs.filter((r) => r.phase === phase) ?? []);
        const rows = this.outcomes.flatMap((o) =>
            (["cold", "no-op"] as const).flatMap((phase) => {
                const runs = o.runs.filter((x) => x.phase === phase);
                const r = median(runs);
                if (r === undefined) return [];
                const walls = runs.map((x) => x.wallMs);
                return [
                    [
                        r.tool,
                        r.phase,
                        String(r.invocations),
                        runs.length > 1
                            ? `${seconds(r.wallMs)} (${seconds(Math.min(...walls))}–${seconds(Math.max(...walls))})`
                            : seconds(r.wallMs),
                        seconds(r.cpuMs),
                        seconds(r.registryCpuMs),
                        (r.maxRssKiB / 1024).toFixed(0),
                        `${mib(r.sourceBytes)} (${r.sourceBlobRequests})`,
                        mib(r.destinationBytes),
                        mib(r.reportedBytes),
                        o.problems.length === 0 ? "yes" : `NO (${o.problems.length})`,
                    ],
                ];
            }),
        );
        const out: string[] = [];
        out.push(
            `Set: ${this.images.length} images (${this.images.filter((i) => i.children.length > 0).length} amd64+arm64 indexes), ` +
                `${this.set.blobCount} distinct blobs, ${mib(this.set.blobBytes)} MiB distinct blob bytes, ` +
                `${mib(this.set.referencedBytes)} MiB counting shared blobs once per image.`,
        );
        out.push(
            `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load average ${loadavg()
                .map((l) => l.toFixed(1))
                .join(" ")} at the end, node ${process.version}.`,
        );
        out.push("");
        out.push(
            table(
                [
                    "contender",
                    "run",
                    "processes",
                    this.settings.rounds > 1 ? `wall s, median of ${this.settings.rounds} (range)` : "wall s",
                    "CPU s",
                    "registries' CPU s",
                    "peak RSS MiB",
                    "blob MiB served by source (GETs)",
                    "destination growth MiB",
                    "engine-reported MiB",
                    "digests preserved",
                ],
                rows,
            ),
        );
        const ours = find(OURS);
        const oursNoop = find(OURS, "no-op");
        const ratioRows: string[][] = [];
        const peers = this.outcomes.filter((o) => o.kind === "registry" && !o.tool.startsWith("ours"));
        for (const phase of ["cold", "no-op"] as const) {
            const mine = find(OURS, phase);
            for (const peer of peers) {
                const theirs = find(peer.tool, phase);
                if (mine === undefined || theirs === undefined) continue;
                ratioRows.push([
                    `registry→registry ${phase}`,
                    `ours / ${peer.tool}`,
                    ratio(mine.wallMs, theirs.wallMs),
                    ratio(mine.cpuMs, theirs.cpuMs),
                    ratio(mine.maxRssKiB, theirs.maxRssKiB),
                    ratio(mine.sourceBytes, theirs.sourceBytes),
                    ratio(mine.destinationBytes, theirs.destinationBytes),
                ]);
            }
        }
        const pairs: [string, string, string][] = [
            ["registry→archive", "ours → one oci-archive", `skopeo copy ×${this.images.length} → oci-archive each`],
            ["registry→layout", "ours → one oci: layout", `skopeo copy ×${this.images.length} → one oci: layout`],
        ];
        for (const [what, a, b] of pairs) {
            const mine = find(a);
            const theirs = find(b);
            if (mine === undefined || theirs === undefined) continue;
            ratioRows.push([
                what,
                `${a} / ${b}`,
                ratio(mine.wallMs, theirs.wallMs),
                ratio(mine.cpuMs, theirs.cpuMs),
                ratio(mine.maxRssKiB, theirs.maxRssKiB),
                ratio(mine.sourceBytes, theirs.sourceBytes),
                ratio(mine.destinationBytes, theirs.destinationBytes),
            ]);
        }
        out.push("");
        out.push(
            table(["case", "ratio", "wall", "CPU", "peak RSS", "source blob bytes", "destination bytes"], ratioRows),
        );

        const allOk = this.outcomes.every((o) => o.problems.length === 0);
        const skopeoCold = peers.map((p) => find(p.tool)).filter((r) => r !== undefined);
        const fastest = skopeoCold.reduce<Run | undefined>(
            (a, r) => (a === undefined || r.wallMs < a.wallMs ? r : a),
            undefined,
        );
        out.push("");
        out.push(`digests preserved: ${allOk ? "yes" : "no"}`);
        for (const o of this.outcomes.filter((x) => x.problems.length > 0)) {
            out.push(`  ${o.tool}:\n    ${o.problems.slice(0, 10).join("\n    ")}`);
        }
        const sync = find("skopeo sync");
        const syncNoop = find("skopeo sync", "no-op");
        const target = (what: string, value: number, limit: number) =>
            out.push(
                `target ${what} ≤ ${limit}× skopeo sync: ${value.toFixed(2)}× — ${value <= limit ? "met" : "NOT met"}`,
            );
        if (ours !== undefined && sync !== undefined) {
            target("cold wall", ours.wallMs / sync.wallMs, 0.8);
            target("cold client CPU", ours.cpuMs / sync.cpuMs, 1.0);
        }
        if (oursNoop !== undefined && syncNoop !== undefined) {
            target("no-op wall", oursNoop.wallMs / syncNoop.wallMs, 1.0);
        }
        if (ours !== undefined && fastest !== undefined) {
            out.push(`cold wall / fastest skopeo way (${fastest.tool}): ${(ours.wallMs / fastest.wallMs).toFixed(2)}×`);
        }
        if (oursNoop !== undefined) {
            const zero = oursNoop.sourceBytes === 0 && oursNoop.destinationBytes === 0;
            out.push(
                `target no-op moves 0 blob bytes: source served ` +
                    `${oursNoop.sourceBytes} B, destination grew ${oursNoop.destinationBytes} B — ${zero ? "met" : "NOT met"}`,
            );
        }
        process.stdout.write(`${out.join("\n")}\n`);
        return allOk;
    }

    async writeJson(path: string): Promise<void> {
        await writeFile(
            path,
            `${JSON.stringify(
                {
                    settings: this.settings,
                    set: { ...this.set, images: this.images.length, layoutDir: undefined },
                    cpus: cpus().length,
                    loadavg: loadavg(),
                    outcomes: this.outcomes,
                },
                null,
                2,
            )}\n`,
        );
    }

    async close(): Promise<void> {
        await this.source?.stop();
    }
}

async function main(): Promise<void> {
    const settings = settingsFromEnv();
    checkTimeTool();
    const version = (await skopeo(["--version"])).toString().trim();
    log(
        `${version}; ${cpus().length} CPUs, load average ${loadavg()
            .map((l) => l.toFixed(1))
            .join(" ")}`,
    );
    const scratch = await makeTempDir("bench-images");
    const bench = new Bench(settings, scratch);
    let ok = false;
    try {
        await bench.setup();
        for (let round = 1; round <= settings.rounds; round++) {
            log(`round ${round} of ${settings.rounds}`);
            await bench.registryRuns();
            await bench.archiveRuns();
        }
        if (settings.profileDir !== undefined) {
            await bench.profile(settings.profileDir);
        }
        ok = bench.report();
        if (settings.json !== undefined) {
            await bench.writeJson(settings.json);
        }
    } finally {
        await bench.close();
        await cleanupAll();
    }
    if (!ok) {
        process.exitCode = 1;
    }
}

main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
});
