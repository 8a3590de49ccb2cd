/**
 * Shared shapes of the APT engine. Parsers produce them; the query matcher, the resolver, the
 * sync planner and the publisher consume them.
 */

/**
 * One stanza of a Debian control file (a `Packages` index entry, a `Release` header, ...).
 * Field names keep their original spelling in `order`; look-ups through `get` are
 * case-insensitive, as Debian policy says field names are.
 */
export interface Stanza {
    /** Field value with continuation lines joined by "\n" (leading space removed), or undefined. */
    get(field: string): string | undefined;
    /** Field names in the order they appeared, as spelled in the file. */
    readonly order: readonly string[];
    /** The stanza's text exactly as read (without the blank separator line). */
    readonly raw: string;
    /** Every field as `[name as spelled, value as get() gives it]`, in order, in one pass. */
    entries(): [string, string][];
}

/** A binary package from a `Packages` index, with the fields the engine needs parsed out. */
export interface PackageRecord {
    readonly name: string;
    readonly version: string;
    /** "amd64", "arm64", ... or "all". */
    readonly architecture: string;
    /** Component the record came from ("main", "contrib", ...). */
    readonly component: string;
    /** Path relative to the repository root, e.g. "pool/main/n/nginx/nginx_1.22_amd64.deb". */
    readonly filename: string;
    readonly size: number;
    /** Lower-case hex SHA256 of the .deb. */
    readonly sha256: string;
    /** Source package name (defaults to the binary name), and its version when it differs. */
    readonly source: string;
    readonly sourceVersion: string;
    readonly stanza: Stanza;
}

/** `name (op version) [archs] <profiles>` after parsing; `op` absent when unversioned. */
export interface Relation {
    readonly name: string;
    /** Architecture qualifier such as "any" or "native" from `name:any`, when present. */
    readonly archQualifier?: string;
    readonly op?: "<<" | "<=" | "=" | ">=" | ">>";
    readonly version?: string;
    /** Architecture restriction list from `[amd64 !arm64]`, when present. */
    readonly architectures?: readonly string[];
}

/** A dependency field: a conjunction (`,`) of alternatives (`|`). */
export type RelationList = readonly (readonly Relation[])[];
