import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import {
    type AptRepo,
    type BuiltDeb,
    buildRepo,
    type DebSpec,
    debFileName,
    type GpgKeyring,
    makeDeb,
} from "../../test/harness/fixtures/aptrepo";
import { makeTempDir, removeTempDir } from "../../test/harness/tmp";

/**
 * A generated upstream archive shaped like a small slice of Debian: groups of libraries with
 * dependency chains, versioned dependencies, alternatives, virtual packages (Provides),
 * Pre-Depends, Recommends (not followed), `all` packages, shared source packages and a shared
 * "core" group every other group reaches into. The query names the applications of the first
 * groups, so the dependency closure is about a third of the archive.
 *
 * Everything is derived from a seeded generator: the same options give the same archive, so
 * runs can be compared and `.deb`s can be reused between runs (`debCache`).
 */

export interface UpstreamShape {
    /** Groups of `perGroup` packages; the last one is the shared core. Defaults to 30. */
    groups?: number;
    /** Packages per group: 2 applications and the rest libraries. Defaults to 100. */
    perGroup?: number;
    /** Groups whose applications the query names. Defaults to half of them. */
    selectedGroups?: number;
    /**
     * Whether the packages that second alternatives name (`libfoo | altfoo`) exist upstream.
     * "absent" (the default) makes them name packages of another archive, like a component that
     * is not mirrored: both aptly and this project then select the same set. With "present",
     * aptly selects more (see bench/README.md, "alternatives").
     */
    fallbacks?: "absent" | "present";
    /** Seed of the generator. Defaults to 1. */
    seed?: number;
}

export interface UpstreamPlan {
    specs: DebSpec[];
    /** One aptly query, the applications OR'ed: `app-00-0 | app-00-1 | ...`. */
    query: string;
    /** The package the "one package changed" case gives new versions, and its first version. */
    change: { name: string; version: string };
}

/** mulberry32: a small seeded generator, good enough for shaping test data. */
function generator(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const pad = (n: number) => String(n).padStart(2, "0");

export function planUpstream(shape: UpstreamShape = {}): UpstreamPlan {
    const groups = shape.groups ?? 30;
    const perGroup = shape.perGroup ?? 100;
    const selectedGroups = shape.selectedGroups ?? Math.max(1, Math.round(groups / 2));
    const random = generator(shape.seed ?? 1);
    const pick = (n: number) => Math.floor(random() * n);
    const chance = (p: number) => random() < p;
    // Per group: 2 applications, the libraries and, when present, `fallbacks` packages that only
    // second alternatives name.
    const fallbacks = 4;
    const fallbacksPresent = shape.fallbacks === "present";
    const libs = perGroup - 2 - (fallbacksPresent ? fallbacks : 0);
    const core = groups - 1;
    const libName = (g: number, j: number) => `libg${pad(g)}-${pad(j)}`;
    const virtualName = (g: number, k: number) => `virt-${pad(g)}-${k}`;
    const fallbackName = (g: number, k: number) => `altg${pad(g)}-${k}`;
    // Every tenth library (from the fourth) provides a virtual package of its group.
    const providesVirtual = (j: number) => j % 10 === 3;
    const version = (g: number, j: number) => `${j % 37 === 0 ? "1:" : ""}1.${j % 5}.${g}-1`;
    // Log-uniform between 2 KiB and 200 KiB.
    const size = () => Math.round(2048 * 100 ** random());

    const specs: DebSpec[] = [];
    for (let g = 0; g < groups; g++) {
        for (let j = 0; j < libs; j++) {
            const depends: string[] = [];
            const lower = (span: number) => Math.max(0, j - 1 - pick(span));
            if (j > 0) {
                depends.push(libName(g, lower(4)));
                if (chance(0.3)) depends.push(`${libName(g, pick(j))} (>= 1.0)`);
                // Second alternatives name packages nothing else depends on, see `fallbacks`.
                if (j > 2 && chance(0.12))
                    depends.push(`${libName(g, lower(j))} | ${fallbackName(g, pick(fallbacks))}`);
                if (j > 20 && chance(0.08)) {
                    // A virtual package first, then a real fallback: `mail-transport-agent | exim4`.
                    const k = pick(Math.floor((j - 4) / 10) + 1);
                    depends.push(`${virtualName(g, k)} | ${fallbackName(g, pick(fallbacks))}`);
                }
                if (j > 3 && chance(0.05)) depends.push(`nonexistent-${pad(g)}-${j} | ${libName(g, lower(j))}`);
            }
            if (g !== core && chance(0.04)) depends.push(libName(core, pick(20)));
            const spec: DebSpec = {
                name: libName(g, j),
                version: version(g, j),
                arch: j % 9 === 4 ? "all" : "amd64",
                section: j % 9 === 4 ? "misc" : "libs",
                depends: depends.length > 0 ? [...new Set(depends)].join(", ") : undefined,
                size: size(),
                description: `generated library ${j} of group ${g}`,
                extraFields: { Homepage: `https://example.invalid/g${g}/${j}` },
            };
            if (j > 1 && chance(0.05)) spec.preDepends = libName(g, pick(j));
            if (chance(0.1)) spec.recommends = libName(g, pick(libs));
            if (providesVirtual(j)) spec.provides = virtualName(g, Math.floor(j / 10));
            if (j % 6 === 5) spec.source = `srcg${pad(g)}-${Math.floor(j / 6)}`;
            specs.push(spec);
        }
        for (let k = 0; fallbacksPresent && k < fallbacks; k++) {
            specs.push({
                name: fallbackName(g, k),
                version: `0.${k}.${g}-1`,
                section: "libs",
                depends: libName(g, pick(libs)),
                size: size(),
                description: `generated fallback ${k} of group ${g}`,
            });
        }
        for (let k = 0; k < 2; k++) {
            const top = [libs - 1 - k, libs - 3 - k, libs - 5 - pick(10)].map((j) => libName(g, j));
            specs.push({
                name: `app-${pad(g)}-${k}`,
                version: `2.${k}.${g}-1`,
                section: "utils",
                depends: [...new Set(top)].join(", "),
                size: 150 * 1024,
                description: `generated application ${k} of group ${g}`,
            });
        }
    }
    const apps: string[] = [];
    for (let g = 0; g < selectedGroups; g++) apps.push(`app-${pad(g)}-0`, `app-${pad(g)}-1`);
    const changed = libName(0, libs - 1);
    const old = specs.find((s) => s.name === changed)!;
    return {
        specs,
        query: apps.join(" | "),
        change: { name: changed, version: old.version },
    };
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await work(items[i]!);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
}

/**
 * Builds the `.deb`s with `dpkg-deb` (through `makeDeb`), several at once. With `cacheDir`,
 * a file already there is reused: `makeDeb` output depends only on the spec, which names the
 * sub-directory (the same name and version can have other fields in another upstream shape).
 */
export async function buildDebs(specs: readonly DebSpec[], cacheDir?: string): Promise<BuiltDeb[]> {
    const tmpDir = cacheDir === undefined ? await makeTempDir("bench-debs") : undefined;
    return mapLimit(specs, availableParallelism() * 2, async (spec) => {
        const arch = spec.arch ?? "amd64";
        const fileName = debFileName(spec.name, spec.version, arch);
        const path = tmpDir === undefined ? cachedDebPath(spec, cacheDir!) : join(tmpDir, fileName);
        const outDir = dirname(path);
        await mkdir(outDir, { recursive: true });
        if (cacheDir !== undefined && existsSync(path)) {
            const bytes = await readFile(path);
            return {
                path,
                fileName,
                name: spec.name,
                version: spec.version,
                arch,
                source: spec.source ?? spec.name,
                size: bytes.length,
                sha256: createHash("sha256").update(bytes).digest("hex"),
            };
        }
        return makeDeb(spec, outDir);
    });
}

/** A package given a new version upstream. */
export interface PackageChange {
    name: string;
    version: string;
}

/**
 * `percent` % of `selected` (package names; at least one), spread evenly over them in name
 * order, so that every run of the same upstream changes the same packages.
 */
export function pickChanged(selected: Iterable<string>, percent: number): string[] {
    const names = [...new Set(selected)].sort();
    const count = Math.min(names.length, Math.max(1, Math.round((names.length * percent) / 100)));
    const step = names.length / count;
    return Array.from({ length: count }, (_, i) => names[Math.floor(i * step)]!);
}

/**
 * The version a changed package gets in run `run`: its generated version with `+benchN`
 * appended, which dpkg orders after it and after the versions of earlier runs.
 */
export function changedVersion(plan: UpstreamPlan, name: string, run: number): string {
    const spec = plan.specs.find((s) => s.name === name);
    if (spec === undefined) throw new Error(`the upstream has no package ${name}`);
    return `${spec.version}+bench${run}`;
}

export interface Upstream {
    repo: AptRepo;
    plan: UpstreamPlan;
    debs: BuiltDeb[];
    /** Time spent building (or reading from the cache) the `.deb`s, and how many were built. */
    debsMs: number;
    debsBuilt: number;
    /**
     * Replaces the changed package's current version with `version` (which must be newer),
     * re-indexes and re-signs.
     */
    applyChange(version: string): Promise<void>;
    /**
     * Replaces the current version of each named package with the given (newer) one, then
     * re-indexes and re-signs once.
     */
    applyChanges(changes: readonly PackageChange[]): Promise<void>;
    /** Removes the repository. */
    close(): Promise<void>;
}

/** How many of `specs` are not in `cacheDir` yet (all of them without a cache). */
export function missingDebs(specs: readonly DebSpec[], cacheDir?: string): number {
    if (cacheDir === undefined) return specs.length;
    return specs.filter((spec) => !existsSync(cachedDebPath(spec, cacheDir))).length;
}

function cachedDebPath(spec: DebSpec, cacheDir: string): string {
    const fileName = debFileName(spec.name, spec.version, spec.arch ?? "amd64");
    return join(cacheDir, createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 24), fileName);
}

export async function buildUpstream(options: {
    plan: UpstreamPlan;
    keyring: GpgKeyring;
    debCache?: string;
}): Promise<Upstream> {
    const { plan } = options;
    const debsStart = performance.now();
    const debsBuilt = missingDebs(plan.specs, options.debCache);
    const debs = await buildDebs(plan.specs, options.debCache);
    const debsMs = performance.now() - debsStart;
    const current = new Map(plan.specs.map((s) => [s.name, s.version]));
    // The pool holds hard links to the built files (buildRepo copies a file only when it is not
    // at its pool path yet): a 60,000-package upstream is 2.7 GiB, once.
    const dir = await makeTempDir("bench-upstream");
    const linked = await mapLimit(debs, 16, async (deb) => {
        const target = join(dir, "pool", "main", poolPrefix(deb.source), deb.source, deb.fileName);
        await mkdir(dirname(target), { recursive: true });
        await link(deb.path, target);
        return { ...deb, path: target };
    });
    const repo = await buildRepo({
        dir,
        distribution: "stable",
        components: { main: linked },
        keyring: options.keyring,
        origin: "bench-upstream",
    });
    const specOf = new Map(plan.specs.map((s) => [s.name, s]));
    const applyChanges = async (changes: readonly PackageChange[]) => {
        const built = await buildDebs(
            changes.map(({ name, version }) => {
                const spec = specOf.get(name);
                if (spec === undefined) throw new Error(`the upstream has no package ${name}`);
                return { ...spec, version };
            }),
            options.debCache,
        );
        for (const { name } of changes) {
            await repo.removeDebs("main", name, current.get(name), { reindex: false });
        }
        await repo.addDebs("main", built);
        for (const { name, version } of changes) current.set(name, version);
    };
    return {
        repo,
        plan,
        debs,
        debsMs,
        debsBuilt,
        applyChange: (version) => applyChanges([{ name: plan.change.name, version }]),
        applyChanges,
        async close() {
            await repo.close();
            await removeTempDir(dir);
        },
    };
}

/** Debian's pool directory of a source package (as the test fixture's `buildRepo` lays it out). */
function poolPrefix(source: string): string {
    return source.startsWith("lib") && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
}
