/**
 * `npm run bench:apt`: this project's APT engine side by side with aptly, on the same generated
 * upstream, the same query and the same kind of signed output. Prints wall times, peak RSS and
 * the ratios; it asserts nothing about time. See bench/README.md.
 *
 *     npm run bench:apt -- [--deb-cache DIR] [--cpu-prof DIR] [--groups N] [--runs N] [--stanzas N] [--fallbacks present] [--upstream nginx]
 *
 * --deb-cache DIR  keep the generated .debs in DIR and reuse them in later runs
 * --cpu-prof DIR   run our side under `node --cpu-prof`, profiles written to DIR
 * --groups N       upstream size in groups of 100 packages (default 30: 3000 packages)
 * --runs N         repeat the three cases N times, each from a fresh start (default 3); the
 *                  table shows medians
 * --stanzas N      stanzas of the synthetic index for the parsing benchmark (default 60000)
 * --fallbacks present  second alternatives name packages that exist (aptly then selects more)
 * --upstream nginx     serve the upstream with Debian's nginx instead of the harness' static server
 */
import { readdirSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { makeGpgKeyring } from "../test/harness/fixtures/aptrepo";
import { run } from "../test/harness/servers/process";
import { startStaticServer } from "../test/harness/servers/http";
import { cleanupAll, makeTempDir } from "../test/harness/tmp";
import { makeAptlySide } from "./lib/aptly";
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
import { buildUpstream, planUpstream } from "./lib/upstream";

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
    upstream: "harness" | "nginx";
}

function parseArgs(argv: readonly string[]): Args {
    const args: Args = { groups: 30, stanzas: 60_000, runs: 3, fallbacks: "absent", upstream: "harness" };
    for (let i = 0; i < argv.length; i++) {
        const value = () => {
            const v = argv[++i];
            if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
            return v;
        };
        switch (argv[i]) {
            case "--deb-cache":
                args.debCache = resolve(value());
                break;
            case "--cpu-prof":
                args.cpuProf = resolve(value());
                break;
            case "--groups":
                args.groups = Number(value());
                break;
            case "--runs":
                args.runs = Number(value());
                break;
            case "--stanzas":
                args.stanzas = Number(value());
                break;
            case "--upstream": {
                const v = value();
                if (v !== "harness" && v !== "nginx") throw new Error("--upstream takes harness or nginx");
                args.upstream = v;
                break;
            }
            case "--fallbacks": {
                const v = value();
                if (v !== "absent" && v !== "present") throw new Error("--fallbacks takes absent or present");
                args.fallbacks = v;
                break;
            }
            default:
                throw new Error(`unknown argument ${argv[i]}; see the comment at the top of bench/apt.ts`);
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

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    checkTimeTool();
    await run("aptly", ["version"]).catch((cause) => {
        throw new Error("aptly is missing: install Debian's aptly package", { cause });
    });

    log(`machine: ${(await run("nproc", [])).stdout.trim()} cores, node ${process.version}`);
    const setupStart = performance.now();
    const upstreamKeys = await makeGpgKeyring(["rsa"]);
    const mirrorKeys = await makeGpgKeyring(["rsa"]);
    const plan = planUpstream({ groups: args.groups, fallbacks: args.fallbacks });
    const upstream = await buildUpstream({ plan, keyring: upstreamKeys, debCache: args.debCache });
    const server =
        args.upstream === "nginx" ? await startNginx(upstream.repo.dir) : await startStaticServer(upstream.repo.dir);
    log(
        `upstream: ${plan.specs.length} packages, ${mebibytes(dirBytes(join(upstream.repo.dir, "pool")) / 1024)} MiB,` +
            ` built in ${seconds(performance.now() - setupStart)} s, served at ${server.url} (${args.upstream === "nginx" ? "nginx" : "the harness' static server"})`,
    );
    log(`query: ${plan.query.length > 100 ? `${plan.query.slice(0, 100)}...` : plan.query} (with dependencies)`);

    const work = await makeTempDir("bench-work");
    const trusted = join(work, "upstream-trusted.gpg");
    await writeFile(trusted, (await upstreamKeys.gpg(["--export", upstreamKeys.keys[0]!.fingerprint])).stdoutBytes);
    const prefix = "bench";
    const distribution = "stable";

    const runner = join(__dirname, "lib", "run-ours.js");
    const profiles: { label: string; dir: string }[] = [];
    const caseNames = ["cold sync", "no-op re-sync", "one package changed"] as const;
    const results: CaseRun[][] = caseNames.map(() => []);

    for (let r = 1; r <= args.runs; r++) {
        log(`run ${r} of ${args.runs}`);
        const aptly = await makeAptlySide({
            url: server.url,
            distribution,
            filter: plan.query,
            trustedKeyring: trusted,
            signingHome: mirrorKeys.home,
            signingFingerprint: mirrorKeys.keys[0]!.fingerprint,
            prefix,
        });
        const oursRoot = join(await makeTempDir("bench-ours"), "root");
        const config: RunOursConfig = {
            source: {
                url: server.url,
                distribution,
                components: ["main"],
                architectures: ["amd64"],
                key: upstreamKeys.publicKeysArmored,
            },
            queries: [plan.query],
            withDeps: true,
            publish: { root: oursRoot, prefix },
            signing: { privateKey: mirrorKeys.keys[0]!.privateKeyArmored },
            inputsPath: join(work, `ours-${r}-inputs.json`),
            statePath: join(work, `ours-${r}-state.json`),
        };
        const configPath = join(work, `ours-${r}.json`);
        await writeFile(configPath, JSON.stringify(config));

        // As `pulumi up`: the program resolves the lock, then the provider (another process) syncs.
        const ours = async (label: string): Promise<{ m: Measurement; result: OursDetail }> => {
            const phase = async (name: "resolve" | "up") => {
                const dir =
                    args.cpuProf === undefined
                        ? undefined
                        : join(args.cpuProf, `${label.replace(/[^a-z0-9]+/g, "-")}-${name}-run${r}`);
                if (dir !== undefined) profiles.push({ label: `${label}, ${name}, run ${r}`, dir });
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
                result: {
                    resolveMs: resolved.result.ms,
                    syncMs: up.result.ms,
                    packageCount: up.result.packageCount,
                    resolveRssKiB: resolved.measurement.maxRssKiB,
                    upRssKiB: up.measurement.maxRssKiB,
                },
            };
        };
        const measureCase = async (i: number, aptlyRun: () => Promise<Measurement>) => {
            const name = caseNames[i]!;
            const a = await aptlyRun();
            const o = await ours(name);
            const published = {
                aptly: publishedPackageSet(aptly.publishedDir, distribution),
                ours: publishedPackageSet(join(oursRoot, prefix), distribution),
            };
            const diff = difference(published.aptly, published.ours);
            const same = diff.onlyA.length === 0 && diff.onlyB.length === 0;
            log(
                `  ${name}: aptly ${seconds(a.wallMs)} s, ours ${seconds(o.m.wallMs)} s;` +
                    ` published: aptly ${published.aptly.size}, ours ${published.ours.size} (lock ${o.result.packageCount});` +
                    ` same package set: ${same ? "yes" : "no"}`,
            );
            if (!same) {
                log(`    only aptly (${diff.onlyA.length}): ${diff.onlyA.slice(0, 10).join(", ")}`);
                log(`    only ours (${diff.onlyB.length}): ${diff.onlyB.slice(0, 10).join(", ")}`);
            }
            results[i]!.push({ aptly: a, ours: o.m, detail: o.result, same });
        };

        await measureCase(0, () => aptly.cold());
        await measureCase(1, () => aptly.resync());
        const version = `1.9.${r}-1`;
        log(`  upstream: ${plan.change.name} now ${version}`);
        await upstream.applyChange(version);
        await measureCase(2, () => aptly.resync());
    }

    log("parsing a synthetic Packages index...");
    const parsing = await benchParsing(args.stanzas);

    // Report: the median of the runs for each cell.
    const med = (pick: (c: CaseRun) => number) => (runs: readonly CaseRun[]) => median(runs.map(pick));
    const cases = caseNames.map((name, i) => {
        const runs = results[i]!;
        return {
            name,
            runs,
            aptlyMs: med((c) => c.aptly.wallMs)(runs),
            oursMs: med((c) => c.ours.wallMs)(runs),
            engineMs: med((c) => c.detail.resolveMs + c.detail.syncMs)(runs),
            aptlyRss: med((c) => c.aptly.maxRssKiB)(runs),
            oursRss: med((c) => c.ours.maxRssKiB)(runs),
            same: runs.every((c) => c.same),
        };
    });
    log("");
    log(`median of ${args.runs} run(s):`);
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
    const [cold, noop] = cases;
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
    const target = (what: string, value: number, limit: number) =>
        log(`  ${what}: ${value.toFixed(3)} (target <= ${limit}) ${value <= limit ? "met" : "MISSED"}`);
    const changed = cases[2]!;
    target("cold ours/aptly", cold!.oursMs / cold!.aptlyMs, 0.6);
    target("no-op ours / cold ours, process wall time", noop!.oursMs / cold!.oursMs, 0.1);
    target("no-op ours / cold ours, engine time", noop!.engineMs / cold!.engineMs, 0.1);
    target("one package changed ours/aptly", changed.oursMs / changed.aptlyMs, 0.5);
    for (const c of cases) {
        const worst = Math.max(...c.runs.map((x) => Math.max(x.detail.resolveRssKiB, x.detail.upRssKiB)));
        const theirs = Math.max(...c.runs.map((x) => x.aptly.maxRssKiB));
        target(`peak RSS of each of our processes / aptly's, ${c.name} (worst run)`, worst / theirs, 1);
    }
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
        for (const s of last.aptly.steps) {
            log(`    ${s.label.padEnd(24)} ${seconds(s.wallMs)} s  ${mebibytes(s.maxRssKiB)} MiB`);
        }
        for (const s of last.ours.steps) {
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

    for (const { label, dir } of profiles) {
        for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
            const summary = summarizeProfile(join(dir, file));
            log("");
            log(`profile of ours, ${label} (${join(dir, file)}), ${seconds(summary.totalMs)} s sampled, self time:`);
            for (const a of summary.byArea) log(`  ${seconds(a.ms).padStart(6)} s  ${a.name}`);
            log("  by the nearest engine function on the stack:");
            for (const f of summary.byEngineFunction) log(`  ${seconds(f.ms).padStart(6)} s  ${f.name}`);
        }
    }

    await server.close();
    await upstream.repo.close();
    await upstreamKeys.close();
    await mirrorKeys.close();
}

main()
    .catch((err: unknown) => {
        process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 1;
    })
    .finally(() => cleanupAll());
