/**
 * Turns a query tree into a predicate over package records.
 *
 * Matching follows aptly (deb/query.go, deb/package.go) where it is defined there:
 * - `name` without a condition matches packages called `name` and packages that provide `name`;
 *   `name (op version)` matches only packages called `name` (a versioned Provides does not count,
 *   as in aptly). `{arch}` accepts packages of that architecture, and `all` packages for any
 *   architecture but `source`.
 * - `$Architecture (arch)` (operator `=`) accepts `all` packages too, as `{arch}` does; with any other
 *   operator it compares the architecture string itself.
 * - `$Version` compares in dpkg order; `%` and `~` on it look at the version string.
 * - `$Source` is the source package name (the binary name when the stanza has no `Source`),
 *   `$SourceVersion` its version, `$PackageType` is `deb` or `udeb`. `Name`, `Version` and
 *   `Architecture` read the record; every other field is read from the stanza.
 * - A field without a condition matches when the field is present and not empty.
 * - On ordinary fields `=` is string equality and `<<`, `<=`, `>=`, `>>` compare strings, except
 *   that two decimal integers compare as numbers, and a missing field never satisfies them (aptly
 *   compares strings only, and a missing field as "", so `Installed-Size (<< 1000)` would accept
 *   "1" and packages without the field, but not "20").
 * - `~` finds a regular expression anywhere in the value (JavaScript syntax, close to aptly's Go
 *   syntax for common patterns); `%` matches a glob against the whole value (see glob.ts).
 */

import { compareVersions, satisfies } from "../version";
import type { PackageRecord } from "../types";
import type {
    AndNode,
    Condition,
    DependencyNode,
    FieldNode,
    NotNode,
    OrNode,
    OrderOperator,
    PackageKeyNode,
    QueryNode,
    QueryVisitor,
} from "./ast";
import { providedNames } from "./facts";
import { globToRegExp } from "./glob";
import { parseQuery } from "./parser";

export type PackagePredicate = (pkg: PackageRecord) => boolean;

export interface CompiledQuery {
    /** The query text as given. */
    readonly text: string;
    readonly tree: QueryNode;
    matches(pkg: PackageRecord): boolean;
    /**
     * True when the query itself restricts versions (`name (>= 1)`, `name_1.0_amd64`,
     * `$Version (...)`): then every matching version is wanted, not only the newest.
     */
    readonly constrainsVersion: boolean;
    /**
     * Names such that every package the query matches is called by one of them or provides one of
     * them; undefined when the query can match any name and all packages must be scanned.
     */
    readonly candidateNames: ReadonlySet<string> | undefined;
}

/** Parses and compiles a query. Throws ERR_PARSE (a `QuerySyntaxError`) on bad syntax. */
export function compileQuery(text: string): CompiledQuery {
    const tree = parseQuery(text);
    const predicate = compileTree(tree);
    return {
        text,
        tree,
        matches: predicate,
        constrainsVersion: tree.accept(versionConstraintFinder),
        candidateNames: tree.accept(candidateNameFinder),
    };
}

/** The predicate for a parsed tree. */
export function compileTree(tree: QueryNode): PackagePredicate {
    return tree.accept(predicateBuilder);
}

/** aptly's `MatchesArchitecture`: `all` packages belong to every architecture but `source`. */
export function matchesArchitecture(pkg: PackageRecord, architecture: string): boolean {
    return pkg.architecture === architecture || (pkg.architecture === "all" && architecture !== "source");
}

const predicateBuilder: QueryVisitor<PackagePredicate> = {
    or(node: OrNode) {
        const operands = node.operands.map(compileTree);
        return (pkg) => operands.some((p) => p(pkg));
    },
    and(node: AndNode) {
        const operands = node.operands.map(compileTree);
        return (pkg) => operands.every((p) => p(pkg));
    },
    not(node: NotNode) {
        const operand = compileTree(node.operand);
        return (pkg) => !operand(pkg);
    },
    dependency(node: DependencyNode) {
        const { name, condition, architecture } = node;
        const archOk: PackagePredicate =
            architecture === undefined ? () => true : (pkg) => matchesArchitecture(pkg, architecture);
        if (condition === undefined) {
            return (pkg) => archOk(pkg) && (pkg.name === name || providedNames(pkg).includes(name));
        }
        const versionOk = versionTest(condition);
        return (pkg) => pkg.name === name && archOk(pkg) && versionOk(pkg.version);
    },
    key(node: PackageKeyNode) {
        return (pkg) =>
            pkg.name === node.name && pkg.version === node.version && pkg.architecture === node.architecture;
    },
    field(node: FieldNode) {
        const { field, condition } = node;
        if (field === "$Version") {
            if (condition === undefined) {
                return () => true;
            }
            const versionOk = versionTest(condition);
            return (pkg) => versionOk(pkg.version);
        }
        if (field === "$Architecture" && condition?.op === "=") {
            return (pkg) => matchesArchitecture(pkg, condition.value);
        }
        const read = fieldReader(field);
        if (condition === undefined) {
            return (pkg) => read(pkg) !== "";
        }
        const test = stringTest(condition);
        if (condition.op === "=" || condition.op === "%" || condition.op === "~") {
            return (pkg) => test(read(pkg));
        }
        // aptly compares a missing field as "", which is "older" than anything; an absent
        // Installed-Size is not a small one.
        return (pkg) => {
            const value = read(pkg);
            return value !== "" && test(value);
        };
    },
};

/** Reads a field as aptly's `GetField` does: "" when absent. */
function fieldReader(field: string): (pkg: PackageRecord) => string {
    switch (field) {
        case "$Source":
            return (pkg) => pkg.source;
        case "$SourceVersion":
            return (pkg) => pkg.sourceVersion;
        case "$Architecture":
        case "Architecture":
            return (pkg) => pkg.architecture;
        case "$PackageType":
            return (pkg) => (pkg.filename.endsWith(".udeb") ? "udeb" : "deb");
        case "Name":
            return (pkg) => pkg.name;
        case "Version":
            return (pkg) => pkg.version;
    }
    if (RELATION_FIELDS.has(field.toLowerCase())) {
        // A relation field may be folded over several lines; compare it in the one-line
        // ", "-separated form aptly shows, whatever the folding.
        return (pkg) =>
            (pkg.stanza.get(field) ?? "")
                .split(",")
                .map((part) => part.replace(/\s+/gu, " ").trim())
                .filter((part) => part !== "")
                .join(", ");
    }
    return (pkg) => pkg.stanza.get(field) ?? "";
}

const RELATION_FIELDS = new Set(
    [
        "Depends",
        "Pre-Depends",
        "Recommends",
        "Suggests",
        "Enhances",
        "Breaks",
        "Conflicts",
        "Replaces",
        "Provides",
        "Built-Using",
        "Static-Built-Using",
        "Build-Depends",
        "Build-Depends-Indep",
        "Build-Depends-Arch",
    ].map((f) => f.toLowerCase()),
);

function versionTest(condition: Condition): (version: string) => boolean {
    const { op, value } = condition;
    switch (op) {
        case "%":
            return patternTest(value);
        case "~":
            return regexpTest(value);
        case "=":
            return (version) => compareVersions(version, value) === 0;
        default:
            return (version) => satisfies(version, op, value);
    }
}

function stringTest(condition: Condition): (field: string) => boolean {
    const { op, value } = condition;
    switch (op) {
        case "%":
            return patternTest(value);
        case "~":
            return regexpTest(value);
        case "=":
            return (field) => field === value;
        default:
            return (field) => orderHolds(op, compareStrings(field, value));
    }
}

function patternTest(pattern: string): (text: string) => boolean {
    const re = globToRegExp(pattern);
    if (re === undefined) {
        // The parser rejects such patterns; a tree built by hand may still hold one.
        return () => false;
    }
    return (text) => re.test(text);
}

function regexpTest(source: string): (text: string) => boolean {
    const re = new RegExp(source);
    return (text) => re.test(text);
}

const INTEGER = /^\d+$/u;

function compareStrings(a: string, b: string): number {
    if (INTEGER.test(a) && INTEGER.test(b)) {
        const d = BigInt(a) - BigInt(b);
        return d < 0n ? -1 : d > 0n ? 1 : 0;
    }
    return a < b ? -1 : a > b ? 1 : 0;
}

function orderHolds(op: Exclude<OrderOperator, "=">, order: number): boolean {
    switch (op) {
        case "<<":
            return order < 0;
        case "<=":
            return order <= 0;
        case ">=":
            return order >= 0;
        case ">>":
            return order > 0;
    }
}

const versionConstraintFinder: QueryVisitor<boolean> = {
    or: (node) => node.operands.some((o) => o.accept(versionConstraintFinder)),
    and: (node) => node.operands.some((o) => o.accept(versionConstraintFinder)),
    not: (node) => node.operand.accept(versionConstraintFinder),
    dependency: (node) => node.condition !== undefined,
    key: () => true,
    field: (node) => node.condition !== undefined && (node.field === "$Version" || node.field === "Version"),
};

const candidateNameFinder: QueryVisitor<ReadonlySet<string> | undefined> = {
    or(node) {
        const names = new Set<string>();
        for (const operand of node.operands) {
            const found = operand.accept(candidateNameFinder);
            if (found === undefined) {
                return undefined;
            }
            for (const name of found) {
                names.add(name);
            }
        }
        return names;
    },
    and(node) {
        let smallest: ReadonlySet<string> | undefined;
        for (const operand of node.operands) {
            const found = operand.accept(candidateNameFinder);
            if (found !== undefined && (smallest === undefined || found.size < smallest.size)) {
                smallest = found;
            }
        }
        return smallest;
    },
    not: () => undefined,
    dependency: (node) => new Set([node.name]),
    key: (node) => new Set([node.name]),
    field: (node) =>
        node.field === "Name" && node.condition?.op === "=" ? new Set([node.condition.value]) : undefined,
};
