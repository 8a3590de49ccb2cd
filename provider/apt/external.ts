/**
 * Dependencies resolved across mirrors: a suite such as a security or updates suite is not
 * installable on its own (its packages depend on the base suite's), so an AptMirror may name
 * other sources (`dependencies.from`) whose packages satisfy its dependencies, as apt does on a
 * host that has all of them configured.
 *
 * - The candidate for each dependency is the newest satisfying version among this suite and
 *   every other source (the resolver's `dependencySources`). So is the candidate for each query:
 *   `nginx` on a security suite without nginx is the base suite's (external), and only a query
 *   that matches nothing in any of them is an error, listing where it looked.
 * - A candidate of another source is not copied: it is recorded in `external`
 *   (`name/arch` → `version from <url> <suite>`). When that source is another AptMirror, its
 *   lock must hold that version, else the error names the query, the dependency and the mirror.
 *   A plain source is assumed to be mirrored elsewhere on the site.
 * - The other sources must read the same architectures as this one.
 */
import { AirgapError } from "../errors";
import { type ExternalChoice, resolve } from "./resolver";
import type { PackageRecord } from "./types";

/** Another source whose packages may satisfy this mirror's dependencies. */
export interface DependencySourceSpec {
    /** The argument that names it, e.g. "dependencies.from[0]". */
    argument: string;
    /** For another AptMirror: its name for messages, e.g. `AptMirror "bookworm"`. */
    mirror?: string;
    /** For another AptMirror: its lock (what it copies). Absent for a plain source. */
    lock?: Record<string, string>;
}

/** A dependency source as fetched: its packages, where they come from, what it reads. */
export interface FetchedDependency extends DependencySourceSpec {
    packages: readonly PackageRecord[];
    architectures: readonly string[];
    /** Repository root URL and suite, for `external` and messages. */
    url: string;
    distribution: string;
    /** Where its indexes are, for messages, e.g. "http://…/dists/bookworm main". */
    origin: string;
}

export interface ResolveAcrossOptions {
    packages: readonly PackageRecord[];
    queries: readonly string[];
    architectures: readonly string[];
    withDeps: boolean;
    followRecommends: boolean;
    /** This suite, for messages. */
    origin: string;
    dependencies: readonly FetchedDependency[];
}

/** The records this mirror copies, and `external`: what other sources supply. */
export function resolveAcross(options: ResolveAcrossOptions): {
    packages: PackageRecord[];
    external: Record<string, string>;
} {
    const own = architectureSet(options.architectures);
    for (const dep of options.dependencies) {
        const theirs = architectureSet(dep.architectures);
        if (theirs !== own) {
            throw new AirgapError(
                "ERR_INVALID_ARGUMENT",
                `${dep.argument}: architectures differ: ${describe(dep)} reads ${theirs}, this mirror reads ${own}; ` +
                    "name a mirror or source of the same architectures",
                { argument: dep.argument },
            );
        }
    }
    const where = [
        `this suite (${options.origin})`,
        ...options.dependencies.map((d) => `${d.argument} ${describe(d)} (${d.origin})`),
    ];
    const result = resolve({
        packages: options.packages,
        queries: options.queries,
        architectures: options.architectures,
        withDeps: options.withDeps,
        followRecommends: options.followRecommends,
        origin: where.join(", "),
        dependencySources: options.dependencies.map((d) => ({
            packages: d.packages,
            holds: d.lock === undefined ? () => true : (pkg) => holds(d.lock!, pkg),
        })),
    });
    const unheld = result.external.filter((c) => {
        const lock = options.dependencies[c.source]!.lock;
        return lock !== undefined && !holds(lock, c.package);
    });
    if (unheld.length > 0) {
        const problems = unheld.map((c) => notHeld(c, options.dependencies[c.source]!, options.queries));
        throw new AirgapError("ERR_UNSATISFIABLE", problems.join("\n"), { argument: `packages[${unheld[0]!.query}]` });
    }
    const external: Record<string, string[]> = {};
    for (const c of result.external) {
        const dep = options.dependencies[c.source]!;
        const key = `${c.package.name}/${c.package.architecture}`;
        external[key] = [...(external[key] ?? []), `${c.package.version} from ${dep.url} ${dep.distribution}`];
    }
    return {
        packages: result.packages,
        external: Object.fromEntries(
            Object.keys(external)
                .sort()
                .map((k) => [k, external[k]!.sort().join(", ")]),
        ),
    };
}

function holds(lock: Record<string, string>, pkg: PackageRecord): boolean {
    return (lock[`${pkg.name}/${pkg.architecture}`] ?? "").split(" ").includes(pkg.version);
}

function architectureSet(architectures: readonly string[]): string {
    return [...new Set(architectures)].sort().join(" ");
}

function describe(dep: FetchedDependency): string {
    return dep.mirror ?? `${dep.url} ${dep.distribution}`;
}

function notHeld(choice: ExternalChoice, dep: FetchedDependency, queries: readonly string[]): string {
    const pkg = choice.package;
    const key = `${pkg.name}/${pkg.architecture}`;
    const locked = dep.lock?.[key];
    const what =
        choice.relation === undefined
            ? choice.only
                ? "matches only"
                : "matches, newest,"
            : `dependency ${choice.relation} ${choice.only ? "is satisfied only by" : "resolves to the newest,"}`;
    return (
        `packages[${choice.query}] ${JSON.stringify(queries[choice.query] ?? "")}: ${what}` +
        ` ${dep.distribution}'s ${pkg.name} ${pkg.version}, which ${dep.mirror}'s lock does not hold` +
        `${locked === undefined ? "" : ` (it holds ${pkg.name} ${locked})`}: add it to that mirror's packages`
    );
}
