/**
 * Parsed relation fields of a package record, computed once per record and cached. The matcher
 * asks for `Provides` of every package a query scans, and the resolver for the dependency fields
 * of every package it selects; parsing them again on each look-up would dominate both.
 */

import { AirgapError } from "../../errors";
import { parseRelations } from "../relations";
import type { PackageRecord, RelationList } from "../types";

export type RelationField = "Depends" | "Pre-Depends" | "Recommends" | "Suggests" | "Provides";

const cache = new WeakMap<PackageRecord, Map<RelationField, RelationList>>();

const EMPTY: RelationList = [];

/** The parsed field, or an empty list when the package does not have it. */
export function relationsOf(pkg: PackageRecord, field: RelationField): RelationList {
    let fields = cache.get(pkg);
    if (fields === undefined) {
        fields = new Map();
        cache.set(pkg, fields);
    }
    let parsed = fields.get(field);
    if (parsed === undefined) {
        const text = pkg.stanza.get(field);
        parsed = text === undefined || text.trim() === "" ? EMPTY : parseOf(pkg, field, text);
        fields.set(field, parsed);
    }
    return parsed;
}

function parseOf(pkg: PackageRecord, field: RelationField, text: string): RelationList {
    try {
        return parseRelations(text);
    } catch (cause) {
        const what = `${pkg.name} ${pkg.version} (${pkg.architecture})`;
        const problem = cause instanceof Error ? cause.message : String(cause);
        throw new AirgapError("ERR_PARSE", `package ${what}, field ${field}: ${problem}`, { cause });
    }
}

/**
 * Names the package provides. `Provides` has no alternatives, so every group is one relation; a
 * group with more is read as providing each of them.
 */
export function providedNames(pkg: PackageRecord): readonly string[] {
    return relationsOf(pkg, "Provides").flatMap((group) => group.map((r) => r.name));
}
