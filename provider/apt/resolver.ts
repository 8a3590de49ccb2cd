/**
 * Selects the packages a mirror carries: the packages matching the filter queries and, when asked,
 * everything they depend on.
 *
 * Selection by query
 * - A package is selected when any query matches it (queries are OR'ed), among the packages of the
 *   mirror's architectures and `all`.
 * - When several versions of one name and architecture match a query that does not itself restrict
 *   versions (`nginx`, `Priority (required)`), only the newest is kept, which is what an install
 *   from the mirror would pick. A query that restricts versions (`nginx (>= 1.22)`,
 *   `nginx_1.22.1-9_amd64`, `$Version (...)`) keeps every version it matches. NOTE: aptly keeps every
 *   matching version in both cases (`PackageList.Filter`); repositories that list many versions
 *   (vendor repositories keep every release) would otherwise be mirrored whole.
 * - A query matching nothing is an ERR_NOT_FOUND error naming it (all such queries at once).
 *
 * Dependency closure (`withDeps`)
 * - Follows `Depends` and `Pre-Depends`, plus `Recommends` and `Suggests` when asked, for every
 *   target architecture a package serves: its own, or each configured one for an `all` package.
 *   A dependency of an `amd64` package is satisfied by `amd64` or `all` packages.
 * - A group `a | b` already satisfied by the selection is left alone. Otherwise the first
 *   alternative that can be satisfied is taken: a real package of that name with a satisfying
 *   version (the newest), else a package providing it (the newest; by name on a tie). Per Debian
 *   policy 7.5 a versioned dependency is satisfied only by a versioned `Provides: foo (= v)`;
 *   an unversioned `Provides` satisfies unversioned dependencies only.
 * - Groups with alternatives are decided after the plain dependencies queued before them, so that
 *   a package another dependency pulls in anyway wins over the first alternative.
 * - `name:any` is also satisfied by a package of another configured architecture marked
 *   `Multi-Arch: allowed` (after the target architecture and `all`); `name:native` is read as
 *   `name`; `name:arch` wants that architecture. Restriction lists `[amd64 !arm64]` are honoured
 *   (`any`, `linux-any` and `any-<cpu>` wildcards included). Conflicts and Breaks are not looked at.
 * - A `Depends` or `Pre-Depends` group nothing can satisfy is collected; when the closure is done
 *   all of them are raised together as one ERR_UNSATISFIABLE error (aptly drops them, mentioning
 *   them only with `-dep-verbose-resolve`, and publishes a mirror that cannot install).
 *   Unsatisfiable `Recommends`/`Suggests` do not fail, as apt installs without them; they are
 *   returned in `unsatisfiedWeak`.
 *
 * Other sources (`dependencySources`)
 * - Dependencies may also be satisfied by the packages of other sources, as apt on a host that has
 *   all of them configured: the candidate for a dependency is the newest satisfying version among
 *   this source and the others (on a tie: a package another source `holds`, then this source's,
 *   then the others'). A package chosen from another source is returned in `external`, not in
 *   `packages`; its own dependencies are followed like any other.
 * - Queries are resolved the same way: a query that does not restrict versions matches in every
 *   source and keeps the newest of each name (so `nginx` on a security suite without nginx is the
 *   base suite's, external; a newer nginx elsewhere than here is external too). A query that
 *   restricts versions keeps the versions it matches here, or, when none, those it matches in the
 *   others. Only a query matching nothing anywhere is an error, naming every place searched.
 *
 * One file for one algorithm: the package index, the query match and the dependency closure work
 * on the same structures, and the closure's choices (alternatives, Provides, architectures) are
 * easiest to check read together.
 */

import { AirgapError } from "../errors";
import { relationsOf } from "./query/facts";
import { type CompiledQuery, compileQuery } from "./query/match";
import { formatRelation } from "./relations";
import type { PackageRecord, Relation } from "./types";
import { compareVersions, satisfies } from "./version";

export interface ResolveOptions {
    /** Every package of the mirror: all components, all architectures including `all`. */
    packages: readonly PackageRecord[];
    /** Package queries (aptly syntax); a package is selected when any of them matches. */
    queries: readonly string[];
    /** Target architectures, e.g. ["amd64", "arm64"]. Defaults to every architecture in `packages` when empty. */
    architectures: readonly string[];
    /** Also select the dependency closure of the matched packages. */
    withDeps: boolean;
    /** Follow `Recommends` too. Defaults to false. */
    followRecommends?: boolean;
    /** Follow `Suggests` too. Defaults to false. */
    followSuggests?: boolean;
    /** Where the packages come from, for messages, e.g. "http://deb.example/debian bookworm main". */
    origin?: string;
    /** Other sources whose packages may satisfy dependencies and queries; see the file comment. */
    dependencySources?: readonly DependencySource[];
}

export interface DependencySource {
    readonly packages: readonly PackageRecord[];
    /** Whether the source already carries a package (a mirror's lock); on a tie it is preferred. */
    readonly holds?: (pkg: PackageRecord) => boolean;
}

/** A dependency the closure satisfied with a package of another source. */
export interface ExternalChoice {
    readonly package: PackageRecord;
    /** Index of the source in `dependencySources`. */
    readonly source: number;
    /** Index of the query whose closure needed it. */
    readonly query: number;
    /** The relation it was chosen for, e.g. "libc6 (>= 2.36)" (absent if a query matched it). */
    readonly relation?: string;
    /** True when no package of this source satisfies that relation (or, for a query, has that name). */
    readonly only: boolean;
}

export type DependencyField = "Depends" | "Pre-Depends" | "Recommends" | "Suggests";

export interface UnsatisfiedDependency {
    readonly package: PackageRecord;
    readonly field: DependencyField;
    /** The alternatives group, e.g. "libssl3 (>= 3.0) | libssl1.1". */
    readonly relation: string;
    /** Target architectures for which nothing satisfies it. */
    readonly architectures: readonly string[];
}

export interface ResolveResult {
    /** The selection, sorted by name, architecture and version. */
    readonly packages: PackageRecord[];
    /** `Recommends`/`Suggests` groups (only when followed) that nothing satisfies. */
    readonly unsatisfiedWeak: UnsatisfiedDependency[];
    /** Packages of `dependencySources` the closure chose (empty without them). */
    readonly external: ExternalChoice[];
}

/** ERR_UNSATISFIABLE with every problem found; the message lists them one per line. */
export class UnsatisfiableDependenciesError extends AirgapError {
    public readonly problems: readonly UnsatisfiedDependency[];

    constructor(problems: readonly UnsatisfiedDependency[], origin?: string) {
        const count =
            problems.length === 1 ? "1 unsatisfiable dependency" : `${problems.length} unsatisfiable dependencies`;
        const where = origin ? ` in ${origin}` : "";
        super(
            "ERR_UNSATISFIABLE",
            `packages: ${count}${where}:\n${problems.map((p) => `  ${describeProblem(p)}`).join("\n")}`,
            { argument: "packages" },
        );
        this.name = "UnsatisfiableDependenciesError";
        this.problems = problems;
    }
}

export function describeProblem(problem: UnsatisfiedDependency): string {
    const pkg = problem.package;
    return (
        `${pkg.name} ${pkg.version} (${pkg.architecture}) ${problem.field} "${problem.relation}":` +
        ` nothing satisfies it for ${problem.architectures.join(", ")}`
    );
}

/** `name_version_arch`, the identity of a package in a mirror. */
export function packageKey(pkg: PackageRecord): string {
    return `${pkg.name}_${pkg.version}_${pkg.architecture}`;
}

export function resolve(options: ResolveOptions): ResolveResult {
    const architectures = targetArchitectures(options);
    const index = new PackageIndex(options.packages, new Set(architectures));
    const others = options.dependencySources ?? [];
    // Where each package of another source comes from; this source's packages are not in it.
    const originOf = new Map<PackageRecord, number>();
    const preferred: PackageRecord[] = [];
    const rest: PackageRecord[] = [];
    for (const [i, other] of others.entries()) {
        for (const pkg of other.packages) {
            originOf.set(pkg, i);
            (other.holds?.(pkg) ? preferred : rest).push(pkg);
        }
    }
    // The closure's candidates, in the order a tie is decided (the index sorts stably by version).
    const candidates =
        others.length === 0
            ? index
            : new PackageIndex([...preferred, ...options.packages, ...rest], new Set(architectures));
    const queries = options.queries.map((q) => compileQuery(q));
    const selection = new Selection();

    const unmatched: { index: number; text: string }[] = [];
    for (const [i, query] of queries.entries()) {
        const here = index.match(query);
        const matched = others.length === 0 ? here : queryCandidates(query, here, candidates);
        if (matched.length === 0) {
            unmatched.push({ index: i, text: query.text });
        }
        const found = new Set(here.map((pkg) => `${pkg.name} ${pkg.architecture}`));
        for (const pkg of query.constrainsVersion ? matched : newestPerNameAndArchitecture(matched)) {
            selection.add(pkg, { query: i, only: !found.has(`${pkg.name} ${pkg.architecture}`) });
        }
    }
    if (unmatched.length > 0) {
        const list = unmatched.map((q) => `packages[${q.index}] ${JSON.stringify(q.text)}`).join(", ");
        const where = options.origin ? ` in ${options.origin}` : "";
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `${list} ${unmatched.length === 1 ? "matches" : "match"} nothing${where}` +
                ` (architectures ${architectures.join(", ")} and all)`,
            { argument: `packages[${unmatched[0].index}]` },
        );
    }

    const unsatisfiedWeak: UnsatisfiedDependency[] = [];
    if (options.withDeps) {
        const fields: DependencyField[] = ["Pre-Depends", "Depends"];
        if (options.followRecommends ?? false) {
            fields.push("Recommends");
        }
        if (options.followSuggests ?? false) {
            fields.push("Suggests");
        }
        const closure = new Closure(
            candidates,
            selection,
            architectures,
            fields,
            others.length > 0 ? index : undefined,
        );
        closure.run();
        const hard = closure.problems.filter((p) => p.field === "Depends" || p.field === "Pre-Depends");
        if (hard.length > 0) {
            throw new UnsatisfiableDependenciesError(hard, options.origin);
        }
        unsatisfiedWeak.push(...closure.problems.filter((p) => p.field === "Recommends" || p.field === "Suggests"));
    }

    const byIdentity = (a: PackageRecord, b: PackageRecord) =>
        compareStrings(a.name, b.name) ||
        compareStrings(a.architecture, b.architecture) ||
        compareVersions(a.version, b.version);
    const selected = [...selection.all()];
    const packages = selected.filter((pkg) => !originOf.has(pkg)).sort(byIdentity);
    const external = selected
        .filter((pkg) => originOf.has(pkg))
        .sort(byIdentity)
        .map((pkg): ExternalChoice => {
            const why = selection.why.get(pkg) ?? { query: 0, only: true };
            return { package: pkg, source: originOf.get(pkg)!, ...why };
        });
    return { packages, unsatisfiedWeak, external };
}

/**
 * What a query matches when other sources count too: in every source when it does not restrict
 * versions (the newest of each name is then kept, as `apt-get install` on a host with all the
 * sources picks it); when it does, the versions it matches in this source, or if none, those it
 * matches in the others.
 */
function queryCandidates(query: CompiledQuery, here: PackageRecord[], all: PackageIndex): PackageRecord[] {
    if (query.constrainsVersion && here.length > 0) {
        return here;
    }
    return all.match(query);
}

function targetArchitectures(options: ResolveOptions): string[] {
    if (options.architectures.length > 0) {
        return [...new Set(options.architectures)];
    }
    const found = new Set<string>();
    for (const pkg of options.packages) {
        if (pkg.architecture !== "all" && pkg.architecture !== "source") {
            found.add(pkg.architecture);
        }
    }
    return [...found].sort();
}

function newestPerNameAndArchitecture(packages: readonly PackageRecord[]): PackageRecord[] {
    const newest = new Map<string, PackageRecord>();
    for (const pkg of packages) {
        const id = `${pkg.name} ${pkg.architecture}`;
        const current = newest.get(id);
        if (current === undefined || compareVersions(pkg.version, current.version) > 0) {
            newest.set(id, pkg);
        }
    }
    return [...newest.values()];
}

function compareStrings(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

/** A package providing a name, with the `Provides` entry that says so. */
interface Provider {
    readonly pkg: PackageRecord;
    readonly provided: Relation;
}

/** Packages looked up by name and by provided name. Lists by name are sorted newest first. */
class PackageIndex {
    readonly all: PackageRecord[] = [];
    readonly byName = new Map<string, PackageRecord[]>();
    readonly byProvided = new Map<string, Provider[]>();

    constructor(
        packages: readonly PackageRecord[],
        readonly architectures: ReadonlySet<string>,
    ) {
        const seen = new Set<string>();
        for (const pkg of packages) {
            if (pkg.architecture !== "all" && !architectures.has(pkg.architecture)) {
                continue;
            }
            // The same package listed by two components is one package.
            const key = packageKey(pkg);
            if (seen.has(key)) {
                continue;
            }
            seen.add(key);
            this.all.push(pkg);
            append(this.byName, pkg.name, pkg);
            for (const group of relationsOf(pkg, "Provides")) {
                for (const provided of group) {
                    append(this.byProvided, provided.name, { pkg, provided });
                }
            }
        }
        for (const list of this.byName.values()) {
            list.sort((a, b) => compareVersions(b.version, a.version));
        }
    }

    /** Every package the query matches, in index order, without duplicates. */
    match(query: CompiledQuery): PackageRecord[] {
        if (query.candidateNames === undefined) {
            return this.all.filter((pkg) => query.matches(pkg));
        }
        const candidates = new Set<PackageRecord>();
        for (const name of query.candidateNames) {
            for (const pkg of this.byName.get(name) ?? []) {
                candidates.add(pkg);
            }
            for (const provider of this.byProvided.get(name) ?? []) {
                candidates.add(provider.pkg);
            }
        }
        return [...candidates].filter((pkg) => query.matches(pkg));
    }
}

/** The selected packages, indexed like `PackageIndex` so that satisfaction checks are look-ups. */
class Selection {
    private readonly byKey = new Map<string, PackageRecord>();
    readonly byName = new Map<string, PackageRecord[]>();
    readonly byProvided = new Map<string, Provider[]>();
    /** Packages in the order they were added; the closure walks it as its queue. */
    readonly order: PackageRecord[] = [];
    /** Why each package was selected: the query whose closure needed it, and for which relation. */
    readonly why = new Map<PackageRecord, { query: number; relation?: string; only: boolean }>();

    /** Adds the package; false when it was already selected. */
    add(pkg: PackageRecord, why: { query: number; relation?: string; only?: boolean }): boolean {
        const key = packageKey(pkg);
        if (this.byKey.has(key)) {
            return false;
        }
        this.byKey.set(key, pkg);
        this.why.set(pkg, { only: true, ...why });
        this.order.push(pkg);
        append(this.byName, pkg.name, pkg);
        for (const group of relationsOf(pkg, "Provides")) {
            for (const provided of group) {
                append(this.byProvided, provided.name, { pkg, provided });
            }
        }
        return true;
    }

    all(): Iterable<PackageRecord> {
        return this.byKey.values();
    }
}

interface PendingGroup {
    readonly pkg: PackageRecord;
    readonly architecture: string;
    readonly field: DependencyField;
    readonly alternatives: readonly Relation[];
}

class Closure {
    readonly problems: UnsatisfiedDependency[] = [];
    private readonly problemIndex = new Map<string, { architectures: string[] }>();

    constructor(
        private readonly index: PackageIndex,
        private readonly selection: Selection,
        private readonly architectures: readonly string[],
        private readonly fields: readonly DependencyField[],
        /** This source's own packages, when `index` also holds other sources' (for `only`). */
        private readonly own?: PackageIndex,
    ) {}

    run(): void {
        const deferred: PendingGroup[] = [];
        let nextPackage = 0;
        let nextDeferred = 0;
        for (;;) {
            if (nextPackage < this.selection.order.length) {
                const pkg = this.selection.order[nextPackage++]!;
                for (const architecture of this.targetsOf(pkg)) {
                    for (const field of this.fields) {
                        for (const group of relationsOf(pkg, field)) {
                            const alternatives = group.filter((r) => appliesTo(r, architecture));
                            if (alternatives.length === 0 || this.satisfied(alternatives, architecture)) {
                                continue;
                            }
                            const pending = { pkg, architecture, field, alternatives };
                            if (alternatives.length === 1) {
                                this.decide(pending);
                            } else {
                                deferred.push(pending);
                            }
                        }
                    }
                }
            } else if (nextDeferred < deferred.length) {
                const pending = deferred[nextDeferred++]!;
                if (!this.satisfied(pending.alternatives, pending.architecture)) {
                    this.decide(pending);
                }
            } else {
                return;
            }
        }
    }

    private targetsOf(pkg: PackageRecord): readonly string[] {
        return pkg.architecture === "all" ? this.architectures : [pkg.architecture];
    }

    private satisfied(alternatives: readonly Relation[], architecture: string): boolean {
        return alternatives.some(
            (relation) =>
                (this.selection.byName.get(relation.name) ?? []).some(
                    (pkg) => this.accepts(pkg, relation, architecture, true) && versionHolds(pkg.version, relation),
                ) ||
                (this.selection.byProvided.get(relation.name) ?? []).some(
                    (p) => this.accepts(p.pkg, relation, architecture, true) && provisionHolds(p.provided, relation),
                ),
        );
    }

    private decide(pending: PendingGroup): void {
        for (const relation of pending.alternatives) {
            const chosen = this.candidate(this.index, relation, pending.architecture);
            if (chosen !== undefined) {
                const query = this.selection.why.get(pending.pkg)?.query ?? 0;
                const only =
                    this.own === undefined || this.candidate(this.own, relation, pending.architecture) === undefined;
                this.selection.add(chosen, { query, relation: formatRelation(relation), only });
                return;
            }
        }
        this.report(pending);
    }

    /** The package to add for one alternative, or undefined when nothing satisfies it. */
    private candidate(index: PackageIndex, relation: Relation, architecture: string): PackageRecord | undefined {
        const real = index.byName.get(relation.name) ?? [];
        for (const foreign of [false, true]) {
            const found = real.find(
                (pkg) => this.accepts(pkg, relation, architecture, foreign) && versionHolds(pkg.version, relation),
            );
            if (found !== undefined) {
                return found;
            }
        }
        for (const foreign of [false, true]) {
            let best: PackageRecord | undefined;
            for (const provider of index.byProvided.get(relation.name) ?? []) {
                const pkg = provider.pkg;
                if (
                    !this.accepts(pkg, relation, architecture, foreign) ||
                    !provisionHolds(provider.provided, relation)
                ) {
                    continue;
                }
                if (
                    best === undefined ||
                    compareVersions(pkg.version, best.version) > 0 ||
                    (compareVersions(pkg.version, best.version) === 0 && pkg.name < best.name)
                ) {
                    best = pkg;
                }
            }
            if (best !== undefined) {
                return best;
            }
        }
        return undefined;
    }

    /**
     * Whether `pkg` may satisfy `relation` for a package of `architecture`. Packages of another
     * architecture (`:any` with `Multi-Arch: allowed`) count only when `foreign` is true.
     */
    private accepts(pkg: PackageRecord, relation: Relation, architecture: string, foreign: boolean): boolean {
        const qualifier = relation.archQualifier;
        if (qualifier !== undefined && qualifier !== "any" && qualifier !== "native") {
            return pkg.architecture === qualifier;
        }
        if (pkg.architecture === architecture || pkg.architecture === "all") {
            return true;
        }
        return (
            foreign &&
            qualifier === "any" &&
            this.index.architectures.has(pkg.architecture) &&
            pkg.stanza.get("Multi-Arch")?.trim() === "allowed"
        );
    }

    private report(pending: PendingGroup): void {
        const relation = pending.alternatives.map(formatRelation).join(" | ");
        const id = `${packageKey(pending.pkg)}\n${pending.field}\n${relation}`;
        const known = this.problemIndex.get(id);
        if (known !== undefined) {
            if (!known.architectures.includes(pending.architecture)) {
                known.architectures.push(pending.architecture);
            }
            return;
        }
        const problem = {
            package: pending.pkg,
            field: pending.field,
            relation,
            architectures: [pending.architecture],
        };
        this.problemIndex.set(id, problem);
        this.problems.push(problem);
    }
}

function versionHolds(version: string, relation: Relation): boolean {
    return relation.op === undefined || satisfies(version, relation.op, relation.version ?? "");
}

/** Debian policy 7.5: only `Provides: name (= v)` can satisfy a versioned dependency. */
function provisionHolds(provided: Relation, relation: Relation): boolean {
    if (relation.op === undefined) {
        return true;
    }
    return (
        provided.op === "=" &&
        provided.version !== undefined &&
        satisfies(provided.version, relation.op, relation.version ?? "")
    );
}

/** Whether a relation with a restriction list such as `[amd64 !arm64]` applies on `architecture`. */
function appliesTo(relation: Relation, architecture: string): boolean {
    const list = relation.architectures;
    if (list === undefined || list.length === 0) {
        return true;
    }
    const negated = list.filter((a) => a.startsWith("!")).map((a) => a.slice(1));
    const positive = list.filter((a) => !a.startsWith("!"));
    if (positive.length > 0) {
        return positive.some((a) => architectureMatches(a, architecture));
    }
    return !negated.some((a) => architectureMatches(a, architecture));
}

function architectureMatches(pattern: string, architecture: string): boolean {
    return (
        pattern === architecture || pattern === "any" || pattern === "linux-any" || pattern === `any-${architecture}`
    );
}

function append<V>(map: Map<string, V[]>, key: string, value: V): void {
    const list = map.get(key);
    if (list === undefined) {
        map.set(key, [value]);
    } else {
        list.push(value);
    }
}
