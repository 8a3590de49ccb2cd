/**
 * The text of a published suite: `Packages` stanzas (only the verified hash is carried over),
 * the indexes per component and architecture, and what the Release says.
 */

import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { formatStanza } from "./control";
import type { ReleaseFile } from "./release";
import { publishedSourceStanza } from "./sources";
import type { PackageRecord } from "./types";
import { compareVersions } from "./version";
import type { PublishedPackage, PublishOptions, PublishPlan, IndexCompressor } from "./publish_plan";

const gzipAsync = promisify(gzip);

/** Hash fields a `Packages` entry may carry for its file; only the verified SHA256 is written back. */
const FILE_FIELDS = new Set(["filename", "size", "md5sum", "sha1", "sha256", "sha512"]);

/** The `Packages` entry of a published package: the upstream stanza with the pool's file fields. */
export function publishedStanza(record: PackageRecord, filename: string): string {
    const fields: [string, string][] = [];
    const own: Record<string, string> = {
        package: record.name,
        version: record.version,
        architecture: record.architecture,
    };
    const seen = new Set<string>();
    let fileAt = -1;
    for (const [name, value] of record.stanza.entries()) {
        const key = name.toLowerCase();
        if (FILE_FIELDS.has(key)) {
            if (fileAt < 0) {
                fileAt = fields.length;
            }
            continue;
        }
        seen.add(key);
        fields.push([name, own[key] ?? value]);
    }
    const head = (["Package", "Version", "Architecture"] as const).filter((name) => !seen.has(name.toLowerCase()));
    const fileFields: [string, string][] = [
        ["Filename", filename],
        ["Size", String(record.size)],
        ["SHA256", record.sha256],
    ];
    fields.splice(fileAt < 0 ? fields.length : fileAt, 0, ...fileFields);
    fields.unshift(...head.map((name): [string, string] => [name, own[name.toLowerCase()]]));
    return formatStanza(fields);
}

export function comparePackages(a: PublishedPackage, b: PublishedPackage): number {
    if (a.name !== b.name) {
        return a.name < b.name ? -1 : 1;
    }
    const byVersion = compareVersions(a.version, b.version);
    if (byVersion !== 0) {
        return byVersion;
    }
    return a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0;
}

/**
 * The index files of a suite, by path relative to `dists/<dist>`: for every component and
 * architecture, `Packages`, `Packages.gz` and the extra compressed forms.
 */
export async function buildIndexes(
    plan: PublishPlan,
    compressors: readonly IndexCompressor[] = [],
): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const pending: Promise<void>[] = [];
    for (const [base, text] of packagesTexts(plan)) {
        out.set(base, text);
        // Every compressed form at once: gzip runs on libuv's threads, xz in its own process.
        const forms: [string, () => Promise<Uint8Array>][] = [
            [`${base}.gz`, () => gzipAsync(text, { level: 9 })],
            ...compressors.map((c): [string, () => Promise<Uint8Array>] => [
                `${base}${c.extension}`,
                async () => c.compress(text),
            ]),
        ];
        for (const [name, compress] of forms) {
            out.set(name, Buffer.alloc(0));
            pending.push(
                compress().then((bytes) => {
                    out.set(name, Buffer.from(bytes));
                }),
            );
        }
    }
    await Promise.all(pending);
    return out;
}

/**
 * The uncompressed `Packages` index of every component and architecture, by path under
 * `dists/<dist>`; with source packages, each component's `source/Sources`; with udebs, each
 * `debian-installer/binary-<arch>/Packages`.
 */
const textsOfPlan = new WeakMap<PublishPlan, Map<string, Buffer>>();

export function packagesTexts(plan: PublishPlan): Map<string, Buffer> {
    // Built once per publish: the unchanged-check and the indexes both need them.
    const known = textsOfPlan.get(plan);
    if (known !== undefined) {
        return known;
    }
    const out = new Map<string, Buffer>();
    textsOfPlan.set(plan, out);
    const entries = [...plan.byPool.entries()]
        .map(([filename, pkg]) => ({ pkg, published: describe(pkg.record, filename) }))
        .sort((a, b) => comparePackages(a.published, b.published));
    const udebs = entries.some(({ pkg }) => pkg.udeb === true);
    for (const component of plan.components) {
        for (const architecture of plan.architectures) {
            const stanzas = (udeb: boolean) =>
                entries
                    .filter(
                        ({ pkg }) =>
                            (pkg.udeb === true) === udeb &&
                            pkg.record.component === component &&
                            (pkg.record.architecture === architecture || pkg.record.architecture === "all"),
                    )
                    .map(({ pkg, published }) => publishedStanza(pkg.record, published.filename));
            out.set(`${component}/binary-${architecture}/Packages`, Buffer.from(stanzas(false).join("\n"), "utf8"));
            if (udebs) {
                out.set(
                    `${component}/debian-installer/binary-${architecture}/Packages`,
                    Buffer.from(stanzas(true).join("\n"), "utf8"),
                );
            }
        }
        if (plan.sources !== undefined) {
            const stanzas = plan.sources.filter((s) => s.component === component).map(publishedSourceStanza);
            out.set(`${component}/source/Sources`, Buffer.from(stanzas.join("\n"), "utf8"));
        }
    }
    return out;
}

export function describe(record: PackageRecord, filename: string): PublishedPackage {
    return {
        name: record.name,
        version: record.version,
        architecture: record.architecture,
        component: record.component,
        filename,
        size: record.size,
        sha256: record.sha256,
    };
}

/** What the Release of a publish says, less the date and the files. */
export function releaseContent(options: PublishOptions, plan: PublishPlan, date: Date, files: readonly ReleaseFile[]) {
    return {
        origin: options.origin,
        label: options.label ?? options.origin,
        suite: plan.distribution,
        version: options.version,
        codename: options.codename ?? plan.distribution,
        date,
        validUntil: options.validUntil,
        architectures: plan.architectures,
        components: plan.components,
        description: options.description,
        acquireByHash: options.acquireByHash ?? true,
        notAutomatic: options.notAutomatic,
        butAutomaticUpgrades: options.butAutomaticUpgrades,
        files,
    };
}
