/**
 * `dependencies.from` of an AptMirror, while the program runs: the other AptMirrors (their
 * resolved source and lock) and plain sources whose packages may satisfy a mirror's
 * dependencies (`provider/apt/external.ts`), followed through the mirrors they name in turn, and
 * a cycle of mirrors naming each other refused before anything waits on it.
 */
import * as pulumi from "@pulumi/pulumi";
import { APT_DEFAULTS, type AptDependencySpec, type AptLock, type AptSourceSpec } from "../provider/apt/mirror";
import type { AptSourceArgs } from "./aptMirror";

export interface AptDependenciesArgs {
    /**
     * Where this mirror's dependencies may also be found, as on a host whose sources list all of
     * them (a security or updates suite depends on the base suite's packages): other AptMirrors of
     * this program, and plain sources (`{ url, distribution, components, architectures, key... }`).
     * The candidate for each dependency is the newest satisfying version among this suite and all
     * of these (and the mirrors these name in turn); so is the candidate for each package query
     * (`nginx` on a security suite without nginx is the base mirror's), and a query fails only
     * when it matches nothing in any of them. A candidate found elsewhere is not copied into
     * this mirror: it is listed in `external`. When it comes from an AptMirror, that mirror's lock
     * must hold it, else the program fails naming the package to add there. A dependency
     * satisfied by a plain source is simply not copied: the site is assumed to mirror that source
     * elsewhere. Each must read the same architectures as this mirror.
     */
    from: pulumi.Input<pulumi.Input<AptSourceArgs> | pulumi.Resource>[];
}

/** What an AptMirror resolves, as the mirrors naming it in `dependencies.from` read it. */
export interface ResolvedMirror {
    source: AptSourceSpec;
    packages: AptLock;
    /** Its own `dependencies.from`, resolved (followed by the mirrors that name it). */
    dependencies: AptDependencySpec[];
}

interface MirrorNode {
    name: string;
    /** The mirrors its `dependencies.from` names, once read (for finding cycles). */
    from?: MirrorNode[];
    resolved?: pulumi.Output<ResolvedMirror>;
}

const nodes = new WeakMap<object, MirrorNode>();

/** The node of one AptMirror; `register` ties it to the resource once it is constructed. */
export function mirrorNode(name: string): MirrorNode & { register(resource: object): void } {
    const node: MirrorNode = { name };
    return Object.assign(node, { register: (resource: object) => nodes.set(resource, node) });
}

/** An error naming its argument, as `describeProgramError` keeps it. */
function argumentError(argument: string, problem: string): Error {
    return Object.assign(new Error(`${argument}: ${problem}`), { argument, code: "ERR_INVALID_ARGUMENT" });
}

/** The path of mirrors from `start` back to `target`, or undefined. */
function pathTo(start: MirrorNode, target: MirrorNode, seen = new Set<MirrorNode>()): MirrorNode[] | undefined {
    if (start === target) {
        return [start];
    }
    if (seen.has(start)) {
        return undefined;
    }
    seen.add(start);
    for (const next of start.from ?? []) {
        const found = pathTo(next, target, seen);
        if (found !== undefined) {
            return [start, ...found];
        }
    }
    return undefined;
}

/**
 * The dependency sources of `node`'s mirror: each AptMirror named (with its lock) followed by
 * those it names, then plain sources, in the order given; the same source is listed once.
 */
export function dependencySpecs(
    node: MirrorNode,
    dependencies: AptDependenciesArgs | undefined,
): pulumi.Output<AptDependencySpec[]> {
    const from = dependencies?.from ?? [];
    if (!Array.isArray(from)) {
        throw argumentError("dependencies.from", "must be a list of AptMirrors and sources");
    }
    const entries: (MirrorNode | AptSourceSpec)[] = [];
    const mirrors: MirrorNode[] = [];
    for (const [i, entry] of from.entries()) {
        const argument = `dependencies.from[${i}]`;
        if (pulumi.Resource.isInstance(entry)) {
            const other = nodes.get(entry);
            if (other === undefined) {
                throw argumentError(argument, "name an AptMirror or a source { url, distribution, ... }");
            }
            const cycle = pathTo(other, node);
            if (cycle !== undefined) {
                const names = [node, ...cycle].map((n) => n.name).join(" → ");
                throw argumentError(
                    argument,
                    `AptMirror "${other.name}" depends back on this mirror (${names}): mirrors cannot name each other in a cycle`,
                );
            }
            entries.push(other);
            mirrors.push(other);
        } else {
            const s = entry as AptSourceSpec;
            if (typeof s !== "object" || s === null || typeof s.url !== "string") {
                throw argumentError(argument, "name an AptMirror or a source { url, distribution, ... }");
            }
            entries.push({
                ...s,
                components: s.components ?? [...APT_DEFAULTS.components],
                architectures: s.architectures ?? [...APT_DEFAULTS.architectures],
            });
        }
    }
    node.from = mirrors;
    const resolved = mirrors.map((m) => m.resolved ?? pulumi.output<ResolvedMirror | undefined>(undefined));
    return pulumi.all(resolved).apply((results) => {
        const specs: AptDependencySpec[] = [];
        const seen = new Set<string>();
        const add = (spec: AptDependencySpec) => {
            const id = spec.mirror ?? `${spec.source.url} ${spec.source.distribution}`;
            if (!seen.has(id)) {
                seen.add(id);
                specs.push(spec);
            }
        };
        let m = 0;
        for (const [i, entry] of entries.entries()) {
            const argument = `dependencies.from[${i}]`;
            if ("name" in entry && !("url" in entry)) {
                const result = results[m++];
                if (result === undefined) {
                    throw argumentError(argument, `AptMirror "${entry.name}" has no resolved lock`);
                }
                add({ argument, mirror: `AptMirror "${entry.name}"`, lock: result.packages, source: result.source });
                for (const further of result.dependencies) {
                    add({ ...further, argument });
                }
            } else {
                add({ argument, source: entry as AptSourceSpec });
            }
        }
        return specs;
    });
}

/** What the inputs digest of a lock file records of the dependency sources (nothing without them). */
export function dependencyInputs(specs: readonly AptDependencySpec[]): Record<string, unknown> {
    if (specs.length === 0) {
        return {};
    }
    return {
        dependencies: specs.map((d) => ({
            url: d.source.url,
            distribution: d.source.distribution,
            components: d.source.components,
            architectures: d.source.architectures,
            mirror: d.mirror ?? null,
            lock: d.lock ?? null,
        })),
    };
}
