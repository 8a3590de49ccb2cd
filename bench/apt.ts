/**
 * `npm run bench:apt`: this project's APT engine side by side with aptly, on the same generated
 * upstream, the same query and the same kind of signed output. Prints wall times, peak RSS and
 * the ratios; it asserts nothing about time. See bench/README.md.
 *
 *     npm run bench:apt -- [--deb-cache DIR] [--cpu-prof DIR] [--groups N] [--runs N] [--stanzas N]
 *         [--fallbacks present] [--upstream nginx|system] [--query apps|all] [--change-percent P]
 *         [--sizes N,N,...] [--preview]
 *
 * --deb-cache DIR  keep the generated .debs in DIR and reuse them in later runs
 * --cpu-prof DIR   run our side under `node --cpu-prof`, profiles written to DIR
 * --groups N       upstream size in groups of 100 packages (default 30: 3000 packages)
 * --runs N         repeat the cases N times, each from a fresh start (default 3); the table
 *                  shows medians
 * --stanzas N      stanzas of the synthetic index for the parsing benchmark (default 60000)
 * --fallbacks present  second alternatives name packages that exist (aptly then selects more)
 * --upstream nginx     serve the upstream with Debian's nginx instead of the harness' static server
 * --upstream system    instead of a generated upstream: the machine's own Debian archive (its
 *                  first release suite in /etc/apt/sources.list.d, verified with the keyring its
 *                  Signed-By names), the closure of nginx openssh-server curl postgresql-15
 *                  python3; the cold and no-op cases, --runs times (needs the network)
 * --query all      mirror the whole suite: aptly with no filter, ours with `Name (~ .*)`, which
 *                  every package matches (default `apps`: the applications of half the groups,
 *                  with dependencies)
 * --change-percent P   the "changed" case gives P % of the selected packages new versions
 *                  upstream (re-indexed and re-signed once) instead of one library
 * --sizes N,N,...  instead of the three cases: the cold case at each upstream size (packages, a
 *                  multiple of 100), both tools, --runs times each; wall time and peak RSS per
 *                  size and the growth between sizes
 * --preview        after the cold case of the (largest) size: `pulumi up` of a program with one
 *                  AptMirror of the query, then `pulumi preview --expect-no-changes` 3 times, with
 *                  the real CLI; prints their times and the size of the stack's state file
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type GpgKeyring, makeGpgKeyring } from "../test/harness/fixtures/aptrepo";
import { machineDebianSuites, machineSuitesUnreachable } from "../test/harness/fixtures/machinearchive";
import { run } from "../test/harness/servers/process";
import { startStaticServer } from "../test/harness/servers/http";
import { cleanupAll, makeTempDir, removeTempDir } from "../test/harness/tmp";
import { type AptlySide, makeAptlySide } from "./lib/aptly";
import { startNginx } from "./lib/nginx";
import {
    checkTimeTool,
    type Measurement,
    combine,
    markdownTable,
    measureCommand,
    mebibytes,
    ratio,
    seconds,
} from "./lib/measure";
import { benchParsing } from "./lib/parse";
import { summarizeProfile } from "./lib/profile";
import { difference, publishedPackageSet } from "./lib/published";
import type { RunOursConfig, RunOursResult } from "./lib/run-ours";
import { type PreviewResult, measurePreview } from "./lib/preview";
import {
    buildUpstream,
    changedVersion,
    pickChanged,
    planUpstream,
    type Upstream,
    type UpstreamPlan,
} from "./lib/upstream";

/** Our two processes of one case: the program's resolve, the provider's create / update. */
interface OursDetail {
    resolveMs: number;
    syncMs: number;
    packageCount: number;
    resolveRssKiB: number;
    upRssKiB: number;
}

interface CaseRun {
    aptly: Measurement;
    ours: Measurement;
    detail: OursDetail;
    same: boolean;
    /** Packages both sides published (ours). */
    published: number;
}

function median(values: readonly number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Args {
    debCache?: string;
    cpuProf?: string;
    groups: number;
    stanzas: number;
    runs: number;
    fallbacks: "absent" | "present";
    upstream: "harness" | "nginx" | "system";
    query: "apps" | "all";
    changePercent?: number;
    sizes?: number[];
    preview: boolean;
}

/** The package query every package matches: the regular expression `.*` on the name. */
const ALL_PACKAGES = "Name (~ .*)";

function positiveInteger(flag: string, text: string): number {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a positive whole number, not ${text}`);
    return n;
}

function parseArgs(argv: readonly string[]): Args {
    const args: Args = {
        groups: 30,
        stanzas: 60_000,
        runs: 3,
        fallbacks: "absent",
        upstream: "harness",
        query: "apps",
        preview: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i]!;
        const value = () => {
            const v = argv[++i];
            if (v === undefined) throw new Error(`${flag} needs a value`);
            return v;
        };
        switch (flag) {
            case "--deb-cache":
                args.debCache = resolve(value());
                break;
            case "--cpu-prof":
                args.cpuProf = resolve(value());
                break;
            case "--groups":
                args.groups = positiveInteger(flag, value());
                break;
            case "--runs":
                args.runs = positiveInteger(flag, value());
                break;
            case "--stanzas":
                args.stanzas = positiveInteger(flag, value());
                break;
            case "--upstream": {
                const v = value();
                if (v !== "harness" && v !== "nginx" && v !== "system") {
                    throw new Error("--upstream takes harness, nginx or system");
                }
                args.upstream = v;
                break;
            }
            case "--fallbacks": {
                const v = value();
                if (v !== "absent" && v !== "present") throw new Error("--fallbacks takes absent or present");
                args.fallbacks = v;
                break;
            }
            case "--query": {
                const v = value();
                if (v !== "apps" && v !== "all") throw new Error("--query takes apps or all");
                args.query = v;
                break;
            }
            case "--change-percent": {
                const v = value();
                const p = Number(v);
                if (!Number.isFinite(p) || p <= 0 || p > 100) {
                    throw new Error(`--change-percent takes a percentage above 0 and up to 100, not ${v}`);
                }
                args.changePercent = p;
                break;
            }
            case "--sizes": {
                const v = value();
                args.sizes = v.split(",").map((part) => {
                    const n = positiveInteger("--sizes", part.trim());
                    if (n % 100 !== 0 || n < 200) {
                        throw new Error(`--sizes takes package counts that are multiples of 100 from 200, not ${part}`);
                    }
                    return n;
                });
                args.sizes.sort((a, b) => a - b);
                break;
            }
            case "--preview":
                args.preview = true;
                break;
            default:
                throw new Error(`unknown argument ${flag}; see the comment at the top of bench/apt.ts`);
        }
    }
    return args;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

function dirBytes(dir: string): number {
    let n = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name);
        n += entry.isDirectory() ? dirBytes(p) : entry.isFile() ? statSync(p).size : 0;
    }
    return n;
}

async function loadLine(): Promise<string> {
    return (await run("uptime", [])).stdout.trim();
}

/** What every run shares: keys, the work directory, the arguments. */
interface Bench {
    args: Args;
    upstreamKeys: GpgKeyring;
    mirrorKeys: GpgKeyring;
    /** The upstream's public key as a binary keyring, for aptly. */
    trusted: string;
    work: string;
    profiles: { label: string; dir: string }[];
}

/** An upstream both tools mirror: its suite, how each side names and trusts it, the query. */
interface Served {
    url: string;
    distribution: string;
    /** Ours: the AptMirror's source. */
    source: RunOursConfig["source"];
    /** aptly: a keyring file (binary keys) for gpgv. */
    trusted: string;
    /** Ours: the package queries; aptly: its filter (undefined: the whole suite). */
    queries: string[];
    aptlyFilter?: string;
    close(): Promise<void>;
}

/** A generated upstream of one size, served over HTTP. */
interface GeneratedUpstream extends Served {
    plan: UpstreamPlan;
    site: Upstream;
}

const prefix = "bench";
const distribution = "stable";

async function serveUpstream(bench: Bench, groups: number): Promise<GeneratedUpstream> {
    const { args } = bench;
    const start = performance.now();
    const plan = planUpstream({ groups, fallbacks: args.fallbacks });
    const site = await buildUpstream({ plan, keyring: bench.upstreamKeys, debCache: args.debCache });
    const server = args.upstream === "nginx" ? await startNginx(site.repo.dir) : await startStaticServer(site.repo.dir);
    const repoMs = performance.now() - start - site.debsMs;
    log(
        `upstream: ${plan.specs.length} packages, ${mebibytes(dirBytes(join(site.repo.dir, "pool")) / 1024)} MiB;` +
            ` .debs: ${site.debsBuilt} built, ${plan.specs.length - site.debsBuilt} from the cache, in ${seconds(site.debsMs)} s;` +
            ` repository (pool of hard links, apt-ftparchive, signing) ${seconds(repoMs)} s;` +
            ` served at ${server.url} (${args.upstream === "nginx" ? "nginx" : "the harness' static server"})`,
    );
    const all = args.query === "all";
    const queries = all ? [ALL_PACKAGES] : [plan.query];
    log(
        all
            ? `query: the whole suite (aptly: no filter; ours: ${ALL_PACKAGES}, with dependencies)`
            : `query: ${plan.query.length > 100 ? `${plan.query.slice(0, 100)}...` : plan.query} (with dependencies)`,
    );
    return {
        plan,
        site,
        url: server.url,
        distribution,
        // Verified with the upstream's key, given as text.
        source: {
            url: server.url,
            distribution,
            components: ["main"],
            architectures: ["amd64"],
            key: bench.upstreamKeys.publicKeysArmored,
        },
        trusted: bench.trusted,
        queries,
        ...(all ? {} : { aptlyFilter: plan.query }),
        async close() {
            await server.close();
            await site.close();
        },
    };
}

/** Both sides of one run, each on fresh roots. */
interface RunSides {
    aptly: AptlySide;
    /** Our two processes (program, provider) on the same root and state as the previous call. */
    ours(label: string): Promise<{ m: Measurement; detail: OursDetail }>;
    /** The published packages of both sides (`name version arch`). */
    published(): { aptly: Set<string>; ours: Set<string> };
    dispose(): Promise<void>;
}

async function makeRunSides(bench: Bench, served: Served, tag: string): Promise<RunSides> {
    const aptly = await makeAptlySide({
        url: served.url,
        distribution: served.distribution,
        ...(served.aptlyFilter === undefined ? {} : { filter: served.aptlyFilter }),
        trustedKeyring: served.trusted,
        signingHome: bench.mirrorKeys.home,
        signingFingerprint: bench.mirrorKeys.keys[0]!.fingerprint,
        prefix,
    });
    const oursDir = await makeTempDir("bench-ours");
    const oursRoot = join(oursDir, "root");
    const config: RunOursConfig = {
        source: served.source,
        queries: served.queries,
        withDeps: true,
        publish: { root: oursRoot, prefix },
        signing: { privateKey: bench.mirrorKeys.keys[0]!.privateKeyArmored },
        inputsPath: join(bench.work, `ours-${tag}-inputs.json`),
        statePath: join(bench.work, `ours-${tag}-state.json`),
    };
    const configPath = join(bench.work, `ours-${tag}.json`);
    await writeFile(configPath, JSON.stringify(config));
    const runner = join(__dirname, "lib", "run-ours.js");

    // As `pulumi up`: the program resolves the lock, then the provider (another process) syncs.
    const ours = async (label: string) => {
        const phase = async (name: "resolve" | "up") => {
            const dir =
                bench.args.cpuProf === undefined
                    ? undefined
                    : join(bench.args.cpuProf, `${label.replace(/[^a-z0-9]+/g, "-")}-${name}-${tag}`);
            if (dir !== undefined) bench.profiles.push({ label: `${label}, ${name}, ${tag}`, dir });
            const profile = dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
            const { result, measurement } = await measureCommand(`ours ${name}`, process.execPath, [
                ...profile,
                runner,
                name,
                configPath,
            ]);
            return { measurement, result: JSON.parse(result.stdout.trim()) as RunOursResult };
        };
        const resolved = await phase("resolve");
        const up = await phase("up");
        return {
            m: combine([resolved.measurement, up.measurement]),
            detail: {
                resolveMs: resolved.result.ms,
                syncMs: up.result.ms,
                packageCount: up.result.packageCount,
                resolveRssKiB: resolved.measurement.maxRssKiB,
                upRssKiB: up.measurement.maxRssKiB,
            },
        };
    };
    return {
        aptly,
        ours,
        published: () => ({
            aptly: publishedPackageSet(aptly.publishedDir, served.distribution),
            ours: publishedPackageSet(join(oursRoot, prefix), served.distribution),
        }),
        async dispose() {
            await removeTempDir(aptly.rootDir);
            await removeTempDir(oursDir);
        },
    };
}

/** aptly, then ours, then the comparison of what both published. */
async function measureCase(
    sides: RunSides,
    name: string,
    aptlyRun: () => Promise<Measurement>,
): Promise<CaseRun & { names: string[] }> {
    const a = await aptlyRun();
    const o = await sides.ours(name);
    const published = sides.published();
    const diff = difference(published.aptly, published.ours);
    const same = diff.onlyA.length === 0 && diff.onlyB.length === 0;
    log(
        `  ${name}: aptly ${seconds(a.wallMs)} s (${mebibytes(a.maxRssKiB)} MiB), ours ${seconds(o.m.wallMs)} s` +
            ` (resolve ${mebibytes(o.detail.resolveRssKiB)} MiB, up ${mebibytes(o.detail.upRssKiB)} MiB);` +
            ` published: aptly ${published.aptly.size}, ours ${published.ours.size} (lock ${o.detail.packageCount});` +
            ` same package set: ${same ? "yes" : "no"}`,
    );
    if (!same) {
        log(`    only aptly (${diff.onlyA.length}): ${diff.onlyA.slice(0, 10).join(", ")}`);
        log(`    only ours (${diff.onlyB.length}): ${diff.onlyB.slice(0, 10).join(", ")}`);
    }
    return {
        aptly: a,
        ours: o.m,
        detail: o.detail,
        same,
        published: published.ours.size,
        names: [...published.ours].map((entry) => entry.split(" ")[0]!),
    };
}

const worstOwnRss = (runs: readonly CaseRun[]) =>
    Math.max(...runs.map((x) => Math.max(x.detail.resolveRssKiB, x.detail.upRssKiB)));

/** The preview measurement; a failure is printed and ends only this part. */
async function runPreview(bench: Bench, served: Served): Promise<PreviewResult | undefined> {
    log("");
    log("preview: one AptMirror of the query in a program of the deployment repository, real Pulumi CLI...");
    return measurePreview({
        source: served.source,
        queries: served.queries,
        withDeps: true,
        prefix,
        signingKey: bench.mirrorKeys.keys[0]!.privateKeyArmored,
        previews: 3,
        ...(bench.args.cpuProf === undefined ? {} : { cpuProfDir: bench.args.cpuProf }),
        log,
    }).catch((err: unknown) => {
        log(`preview FAILED: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
    });
}

/** Megabytes (10^6 bytes), as the state target is given. */
const megabytes = (bytes: number) => (bytes / 1e6).toFixed(3);

function reportPreview(p: PreviewResult): void {
    const previewMedian = median(p.previewMs);
    log("");
    log(`pulumi CLI, one AptMirror of ${p.packageCount} packages (TypeScript program, lock file unchanged):`);
    log(`  pulumi up (cold):                       ${seconds(p.upMs)} s`);
    log(
        `  pulumi preview --expect-no-changes:     ${p.previewMs.map((ms) => `${seconds(ms)} s`).join(", ")}; median ${seconds(previewMedian)} s`,
    );
    log(
        `  the same previews of an empty program:  ${p.emptyPreviewMs.map((ms) => `${seconds(ms)} s`).join(", ")}; median ${seconds(median(p.emptyPreviewMs))} s` +
            " (CLI, language host, TypeScript, loading the package; no resource)",
    );
    log(
        `  one dynamic resource that does nothing:  ${p.trivialDynamicPreviewMs.map((ms) => `${seconds(ms)} s`).join(", ")}; median ${seconds(median(p.trivialDynamicPreviewMs))} s` +
            " (the same, plus Pulumi's dynamic-provider host, the provider's serialization, check and diff)",
    );
    log(`  stack state file:                       ${p.stateBytes} bytes (${megabytes(p.stateBytes)} MB)`);
    log(`  lock file:                              ${p.lockBytes} bytes (${megabytes(p.lockBytes)} MB)`);
    const bare = p.withoutPackagesOutput;
    log(
        `  without \`export const packages\`:     ${bare.previewMs.map((ms) => `${seconds(ms)} s`).join(", ")}; median ${seconds(median(bare.previewMs))} s; state ${bare.stateBytes} bytes (${megabytes(bare.stateBytes)} MB)`,
    );
    target("pulumi preview --expect-no-changes, median s", previewMedian / 1000, 2.5);
    target("stack state file, MB", p.stateBytes / 1e6, 1.2);
    target("the same, mirror alone (no packages stack output): preview median s", median(bare.previewMs) / 1000, 2.5);
    target("the same, mirror alone: stack state file, MB", bare.stateBytes / 1e6, 1.2);
    if (p.profileDir !== undefined && existsSync(p.profileDir)) {
        for (const file of readdirSync(p.profileDir).filter((f) => f.endsWith(".cpuprofile"))) {
            printProfile(`the profiled preview, node process ${file}`, join(p.profileDir, file), 0.2);
        }
    }
}

/** Prints where a profile's time went; nothing for one under `minSeconds` sampled. */
function printProfile(label: string, file: string, minSeconds = 0): void {
    const summary = summarizeProfile(file);
    if (summary.totalMs < minSeconds * 1000) return;
    log("");
    log(`profile of ours, ${label} (${file}), ${seconds(summary.totalMs)} s sampled, self time:`);
    for (const a of summary.byArea) log(`  ${seconds(a.ms).padStart(6)} s  ${a.name}`);
    log("  by the nearest engine function on the stack:");
    for (const f of summary.byEngineFunction) log(`  ${seconds(f.ms).padStart(6)} s  ${f.name}`);
}

function target(what: string, value: number, limit: number): void {
    log(`  ${what}: ${value.toFixed(3)} (target <= ${limit}) ${value <= limit ? "met" : "MISSED"}`);
}

/** Each case's medians over its runs, after the load line and the heading of the report. */
async function reportMedians(runCount: number, caseNames: readonly string[], results: readonly CaseRun[][]) {
    const med = (runs: readonly CaseRun[], pick: (c: CaseRun) => number) => median(runs.map(pick));
    log("");
    log(`load: ${await loadLine()}`);
    log(`median of ${runCount} run(s), ${results[0]![0]!.published} packages published:`);
    return caseNames.map((name, i) => {
        const runs = results[i]!;
        return {
            name,
            runs,
            aptlyMs: med(runs, (c) => c.aptly.wallMs),
            oursMs: med(runs, (c) => c.ours.wallMs),
            engineMs: med(runs, (c) => c.detail.resolveMs + c.detail.syncMs),
            aptlyRss: med(runs, (c) => c.aptly.maxRssKiB),
            oursRss: med(runs, (c) => c.ours.maxRssKiB),
            same: runs.every((c) => c.same),
        };
    });
}

/** The three cases (cold, no-op, changed), `--runs` times, interleaved. */
async function threeCases(bench: Bench): Promise<void> {
    const { args } = bench;
    const served = await serveUpstream(bench, args.groups);
    const changedCase =
        args.changePercent === undefined ? "one package changed" : `${args.changePercent} % of packages changed`;
    const caseNames = ["cold sync", "no-op re-sync", changedCase] as const;
    const results: CaseRun[][] = caseNames.map(() => []);
    let changed: string[] | undefined;
    let preview: PreviewResult | undefined;

    for (let r = 1; r <= args.runs; r++) {
        log(`run ${r} of ${args.runs} (${await loadLine()})`);
        const sides = await makeRunSides(bench, served, `run${r}`);
        const cold = await measureCase(sides, caseNames[0], () => sides.aptly.cold());
        results[0]!.push(cold);
        results[1]!.push(await measureCase(sides, caseNames[1], () => sides.aptly.resync()));
        if (args.changePercent === undefined) {
            const version = `1.9.${r}-1`;
            log(`  upstream: ${served.plan.change.name} now ${version}`);
            await served.site.applyChange(version);
        } else {
            changed ??= pickChanged(cold.names, args.changePercent);
            const started = performance.now();
            await served.site.applyChanges(
                changed.map((name) => ({ name, version: changedVersion(served.plan, name, r) })),
            );
            log(
                `  upstream: ${changed.length} of the ${cold.published} selected packages (${changed.slice(0, 3).join(", ")}, ...)` +
                    ` given new versions (+bench${r}), re-indexed and re-signed in ${seconds(performance.now() - started)} s`,
            );
        }
        results[2]!.push(await measureCase(sides, caseNames[2], () => sides.aptly.resync()));
        await sides.dispose();
    }
    if (args.preview) preview = await runPreview(bench, served);
    await served.close();

    log("parsing a synthetic Packages index...");
    const parsing = await benchParsing(args.stanzas);

    const cases = await reportMedians(args.runs, caseNames, results);
    log(
        markdownTable(
            [
                "case",
                "aptly s",
                "ours s",
                "ours/aptly",
                "ours engine s",
                "aptly peak RSS MiB",
                "ours peak RSS MiB",
                "RSS ours/aptly",
            ],
            cases.map((c) => [
                c.name,
                seconds(c.aptlyMs),
                seconds(c.oursMs),
                ratio(c.oursMs, c.aptlyMs),
                seconds(c.engineMs),
                mebibytes(c.aptlyRss),
                mebibytes(c.oursRss),
                ratio(c.oursRss, c.aptlyRss),
            ]),
        ),
    );
    const [cold, noop, change] = cases;
    log("");
    log(`no-op ours / cold ours: ${ratio(noop!.oursMs, cold!.oursMs)} (process wall time)`);
    log(
        `no-op ours / cold ours: ${ratio(noop!.engineMs, cold!.engineMs)} (engine: the program's resolveProgramLock + the provider's check and create/update)`,
    );
    log(
        `same package set: ${cases.every((c) => c.same) ? "yes" : "no"}` +
            ` (${cases.map((c) => `${c.name}: ${c.same ? "yes" : "no"}`).join(", ")})`,
    );
    log("");
    log("targets:");
    target("cold ours/aptly", cold!.oursMs / cold!.aptlyMs, 0.6);
    target("no-op ours / cold ours, process wall time", noop!.oursMs / cold!.oursMs, 0.1);
    target("no-op ours / cold ours, engine time", noop!.engineMs / cold!.engineMs, 0.1);
    target(`${change!.name} ours/aptly`, change!.oursMs / change!.aptlyMs, 0.5);
    for (const c of cases) {
        const theirs = Math.max(...c.runs.map((x) => x.aptly.maxRssKiB));
        target(`peak RSS of each of our processes / aptly's, ${c.name} (worst run)`, worstOwnRss(c.runs) / theirs, 1);
    }
    if (preview !== undefined) reportPreview(preview);
    log("");
    log(
        "engine time (ours: resolveProgramLock + the provider's check and create/update, inside the two processes; node start-up and module loading excluded):",
    );
    log(
        markdownTable(
            ["case", ...results[0]!.map((_, r) => `run ${r + 1} ours engine s`)],
            cases.map((c) => [c.name, ...c.runs.map((x) => seconds(x.detail.resolveMs + x.detail.syncMs))]),
        ),
    );
    log("");
    log("every run, wall s (peak RSS MiB):");
    log(
        markdownTable(
            [
                "case",
                ...results[0]!.map((_, r) => `run ${r + 1} aptly`),
                ...results[0]!.map((_, r) => `run ${r + 1} ours`),
            ],
            cases.map((c) => [
                c.name,
                ...c.runs.map((x) => `${seconds(x.aptly.wallMs)} (${mebibytes(x.aptly.maxRssKiB)})`),
                ...c.runs.map((x) => `${seconds(x.ours.wallMs)} (${mebibytes(x.ours.maxRssKiB)})`),
            ]),
        ),
    );
    log("");
    log(`steps of run ${args.runs}:`);
    for (const c of cases) {
        const last = c.runs[c.runs.length - 1]!;
        log(`  ${c.name}`);
        for (const s of [...last.aptly.steps, ...last.ours.steps]) {
            log(`    ${s.label.padEnd(24)} ${seconds(s.wallMs)} s  ${mebibytes(s.maxRssKiB)} MiB`);
        }
        log(
            `    (inside: program resolveProgramLock ${seconds(last.detail.resolveMs)} s, provider check + create/update ` +
                `${seconds(last.detail.syncMs)} s; the rest is node start-up and loading the engine)`,
        );
    }
    log("");
    log(
        markdownTable(
            ["parsing", "stanzas", "MB", "best s", "MB/s"],
            parsing.map((p) => [
                p.label,
                String(p.stanzas),
                (p.bytes / 1e6).toFixed(1),
                seconds(p.ms),
                p.mbPerSecond.toFixed(1),
            ]),
        ),
    );
}

/** The cold case at each size, both tools: how time and memory grow with the upstream. */
async function scale(bench: Bench, sizes: readonly number[]): Promise<void> {
    const { args } = bench;
    const lines: {
        size: number;
        published: number;
        aptlyMs: number;
        aptlyRss: number;
        oursMs: number;
        oursRss: number;
        resolveRss: number;
        upRss: number;
        same: boolean;
        debsBuilt: number;
        debsMs: number;
    }[] = [];
    let preview: PreviewResult | undefined;
    for (const size of sizes) {
        log("");
        log(`size ${size} (${await loadLine()})`);
        const served = await serveUpstream(bench, size / 100);
        const runs: CaseRun[] = [];
        for (let r = 1; r <= args.runs; r++) {
            const sides = await makeRunSides(bench, served, `size${size}-run${r}`);
            runs.push(await measureCase(sides, `cold sync, run ${r}`, () => sides.aptly.cold()));
            await sides.dispose();
        }
        if (args.preview && size === sizes[sizes.length - 1]) preview = await runPreview(bench, served);
        await served.close();
        lines.push({
            size,
            published: runs[0]!.published,
            aptlyMs: median(runs.map((c) => c.aptly.wallMs)),
            aptlyRss: median(runs.map((c) => c.aptly.maxRssKiB)),
            oursMs: median(runs.map((c) => c.ours.wallMs)),
            oursRss: median(runs.map((c) => c.ours.maxRssKiB)),
            resolveRss: median(runs.map((c) => c.detail.resolveRssKiB)),
            upRss: median(runs.map((c) => c.detail.upRssKiB)),
            same: runs.every((c) => c.same),
            debsBuilt: served.site.debsBuilt,
            debsMs: served.site.debsMs,
        });
    }
    log("");
    log(`load: ${await loadLine()}`);
    log(`scale: cold sync at each upstream size, median of ${args.runs} run(s) per size:`);
    for (const l of lines) {
        log(
            `  size ${String(l.size).padStart(6)}: ${String(l.published).padStart(6)} published;` +
                ` aptly ${seconds(l.aptlyMs).padStart(7)} s ${mebibytes(l.aptlyRss).padStart(5)} MiB;` +
                ` ours ${seconds(l.oursMs).padStart(7)} s ${mebibytes(l.oursRss).padStart(5)} MiB` +
                ` (resolve ${mebibytes(l.resolveRss)}, up ${mebibytes(l.upRss)});` +
                ` ours/aptly ${ratio(l.oursMs, l.aptlyMs)} wall, ${ratio(l.oursRss, l.aptlyRss)} RSS;` +
                ` same package set: ${l.same ? "yes" : "no"}`,
        );
    }
    // Growth: the factor between consecutive sizes, and the exponent k of time ~ size^k.
    const exponent = (a: number, b: number, sa: number, sb: number) => (Math.log(b / a) / Math.log(sb / sa)).toFixed(2);
    for (let i = 1; i < lines.length; i++) {
        const a = lines[i - 1]!;
        const b = lines[i]!;
        log(
            `  growth ${a.size} -> ${b.size} (x${(b.published / a.published).toFixed(1)} published):` +
                ` aptly wall x${ratio(b.aptlyMs, a.aptlyMs)} (k=${exponent(a.aptlyMs, b.aptlyMs, a.published, b.published)}),` +
                ` RSS x${ratio(b.aptlyRss, a.aptlyRss)};` +
                ` ours wall x${ratio(b.oursMs, a.oursMs)} (k=${exponent(a.oursMs, b.oursMs, a.published, b.published)}),` +
                ` RSS x${ratio(b.oursRss, a.oursRss)}`,
        );
    }
    for (const l of lines) {
        log(
            `  .debs for size ${l.size}: ${l.debsBuilt} generated, the rest from the cache, ${seconds(l.debsMs)} s` +
                (l.debsBuilt > 0 ? ` (${((l.debsBuilt / l.debsMs) * 60_000).toFixed(0)} per minute)` : ""),
        );
    }
    if (preview !== undefined) reportPreview(preview);
}

/** What sites mirror from the real archive in the seeds: a web, SSH, database and Python host. */
const SYSTEM_PACKAGES = ["nginx", "openssh-server", "curl", "postgresql-15", "python3"];

/**
 * The machine's own Debian archive (`--upstream system`): the closure of `SYSTEM_PACKAGES` from
 * its release suite, both tools downloading from the network, cold then no-op, `--runs` times.
 */
async function realUpstream(bench: Bench): Promise<void> {
    const { args } = bench;
    const suites = machineDebianSuites();
    if (typeof suites === "string") throw new Error(`--upstream system: ${suites}`);
    const suite = suites.release;
    const unreachable = await machineSuitesUnreachable([suite]);
    if (unreachable !== undefined) throw new Error(`--upstream system: ${unreachable}`);
    const served: Served = {
        url: suite.uri,
        distribution: suite.suite,
        source: {
            url: suite.uri,
            distribution: suite.suite,
            components: ["main"],
            architectures: ["amd64"],
            keyring: suite.signedBy,
        },
        trusted: suite.signedBy,
        queries: SYSTEM_PACKAGES,
        aptlyFilter: SYSTEM_PACKAGES.join(" | "),
        async close() {},
    };
    log(
        `upstream: the machine's Debian archive, suite ${suite.suite} main amd64 (from ${suite.file}, keyring ${suite.signedBy})`,
    );
    log(
        `query: ${SYSTEM_PACKAGES.join(" ")}, with dependencies (aptly: -filter '${served.aptlyFilter}' -filter-with-deps)`,
    );
    const caseNames = ["cold sync", "no-op re-sync"] as const;
    const results: CaseRun[][] = caseNames.map(() => []);
    for (let r = 1; r <= args.runs; r++) {
        log(`run ${r} of ${args.runs} (${await loadLine()})`);
        const sides = await makeRunSides(bench, served, `system-run${r}`);
        results[0]!.push(await measureCase(sides, caseNames[0], () => sides.aptly.cold()));
        results[1]!.push(await measureCase(sides, caseNames[1], () => sides.aptly.resync()));
        await sides.dispose();
    }
    if (args.preview) {
        const preview = await runPreview(bench, served);
        if (preview !== undefined) reportPreview(preview);
    }
    const rows = await reportMedians(args.runs, caseNames, results);
    log(
        markdownTable(
            [
                "case",
                "aptly s",
                "ours s",
                "ours/aptly",
                "aptly peak RSS MiB",
                "ours peak RSS MiB",
                "every run, aptly / ours s",
            ],
            rows.map((c) => [
                c.name,
                seconds(c.aptlyMs),
                seconds(c.oursMs),
                ratio(c.oursMs, c.aptlyMs),
                mebibytes(c.aptlyRss),
                mebibytes(c.oursRss),
                c.runs.map((x) => `${seconds(x.aptly.wallMs)} / ${seconds(x.ours.wallMs)}`).join(", "),
            ]),
        ),
    );
    log(`same package set: ${rows.every((c) => c.same) ? "yes" : "no"}`);
    log("targets:");
    target("real upstream, cold ours/aptly", rows[0]!.oursMs / rows[0]!.aptlyMs, 0.8);
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    checkTimeTool();
    await run("aptly", ["version"]).catch((cause) => {
        throw new Error("aptly is missing: install Debian's aptly package", { cause });
    });
    log(`machine: ${(await run("nproc", [])).stdout.trim()} cores, node ${process.version}, ${await loadLine()}`);
    const work = await makeTempDir("bench-work");
    const upstreamKeys = await makeGpgKeyring(["rsa"]);
    const mirrorKeys = await makeGpgKeyring(["rsa"]);
    const trusted = join(work, "upstream-trusted.gpg");
    await writeFile(trusted, (await upstreamKeys.gpg(["--export", upstreamKeys.keys[0]!.fingerprint])).stdoutBytes);
    const bench: Bench = { args, upstreamKeys, mirrorKeys, trusted, work, profiles: [] };

    if (args.upstream === "system") await realUpstream(bench);
    else if (args.sizes === undefined) await threeCases(bench);
    else await scale(bench, args.sizes);

    for (const { label, dir } of bench.profiles) {
        for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
            printProfile(label, join(dir, file));
        }
    }
    await upstreamKeys.close();
    await mirrorKeys.close();
}

main()
    .catch((err: unknown) => {
        process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 1;
    })
    .finally(() => cleanupAll());
