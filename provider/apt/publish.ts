/**
 * Publishing a signed APT repository from verified packages: what replaces `aptly publish`.
 *
 * `publishRepo` runs these steps, in this order, under the repository's lock:
 *
 *   1. check the options and load the signing key (nothing is written when either fails);
 *   2. place the pool files that are new (`pool.ts`: content-checked, never rewritten);
 *   3. build the suite aside in `.staging/`: `Packages{,.gz,...}` per component and
 *      architecture, their by-hash copies, `Release`, `InRelease`, `Release.gpg`; sync it and
 *      move it to `.generations/<dist>/<gen>`;
 *   4. switch: rename a fresh symlink over `dists/<dist>` (atomic, see `publish_layout.ts`);
 *   5. collect garbage: other generations of the suite, staging left-overs, and pool files no
 *      published suite names.
 *
 * A crash anywhere before step 4 leaves the published suite as it was (new pool files are only
 * garbage); after it, the new suite is complete. The next run takes over: verified pool files
 * are kept, left-overs collected.
 *
 * With `Acquire-By-Hash` (the default) a client that read the previous `InRelease` just before
 * the switch still finds the indexes it names: the new generation carries the previous one's
 * `by-hash/SHA256/<hex>` files. Without it such a client can see a Hash Sum mismatch on its next
 * request, the race every in-place publisher has.
 */

import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { invalidArgument } from "../errors";
import { checkReleaseSignatures, loadSigningKey, type ReleaseSigner, type SigningOptions } from "../pgp/sign";
import { sha256, syncPath, writeFileAtomic } from "../store/atomic";
import { type HashMemo, verifiedSha256 } from "../store/hashcache";
import { formatStanza, unsafePathReason } from "./control";
import { collectPool, type PlaceMode, placePoolFile, poolPath, removePoolFiles } from "./pool";
import {
    checkName,
    currentSuite,
    distLink,
    GENERATIONS_DIR,
    generationsOf,
    lockRepo,
    newGenerationName,
    readOptional,
    type PoolReferences,
    referencedPoolFiles,
    repoDirOf,
    STAGING_DIR,
} from "./publish_layout";
import { formatRelease, parseRelease, type ReleaseFile } from "./release";
import type { PackageRecord } from "./types";
import { compareVersions } from "./version";
import { forEachLimited } from "../store/concurrency";

const gzipAsync = promisify(gzip);

/** A package to publish: its record and a local file holding its bytes. */
export interface PublishPackage {
    /**
     * The record as read from upstream (`toPackageRecord`). Its stanza becomes the `Packages`
     * entry, with `Filename` rewritten to the pool path and `Size`/`SHA256` from the record; other
     * checksum fields are dropped (they were not verified).
     */
    readonly record: PackageRecord;
    /** The package file (content store, download directory); MUST match `record.sha256` and `record.size`. */
    readonly file: string;
}

/**
 * Writes one more compressed form of every `Packages` index, e.g. `.xz`. apt picks the forms
 * the `Release` lists; `Packages` and `Packages.gz` are always written.
 */
export interface IndexCompressor {
    /** File name extension with its dot: ".xz", ".zst". */
    readonly extension: string;
    compress(data: Buffer): Buffer | Promise<Buffer>;
}

/** Points where a test (or a caller that wants to observe) can step in; a hook that throws aborts the publish. */
export interface PublishHooks {
    /** After the new pool files are placed, before the suite is built. */
    afterPool?(): void | Promise<void>;
    /** The new generation is complete on disk; `dists/<dist>` still shows the previous one. */
    beforeSwitch?(info: { generation: string; dir: string }): void | Promise<void>;
    /** Right after the switch, before garbage is collected. */
    afterSwitch?(info: { generation: string; dir: string }): void | Promise<void>;
}

export interface PublishOptions {
    /** The directory the repositories are served from. */
    readonly root: string;
    /** Sub-directory of `root` for this repository ("debian", "mirrors/ubuntu"). Defaults to "" (the root). */
    readonly prefix?: string;
    /** The suite, also the directory under `dists/` ("stable", "bookworm-updates"). */
    readonly distribution: string;
    /** Defaults to the distribution. */
    readonly codename?: string;
    readonly origin?: string;
    /** Defaults to the origin. */
    readonly label?: string;
    readonly description?: string;
    /** The `Version:` field of the Release, when the suite has one ("12.5"). */
    readonly version?: string;
    /** Components, in the order the Release lists them. Every package's component MUST be one of them. */
    readonly components: readonly string[];
    /** Binary architectures ("amd64", "arm64"); packages of architecture `all` go into each. */
    readonly architectures: readonly string[];
    readonly packages: readonly PublishPackage[];
    /** The key that signs `InRelease` and `Release.gpg`. Required unless `allowUnsigned`. */
    readonly signing?: SigningOptions;
    /** Publish without `InRelease`/`Release.gpg` when `signing` is absent. Defaults to false. */
    readonly allowUnsigned?: boolean;
    /** Write `Acquire-By-Hash: yes` and the by-hash copies. Defaults to true. */
    readonly acquireByHash?: boolean;
    /** More compressed forms of the indexes (see `IndexCompressor`). Defaults to none. */
    readonly compressors?: readonly IndexCompressor[];
    /** How pool files are made from `PublishPackage.file`. Defaults to "hardlink". */
    readonly placeMode?: PlaceMode;
    /** The Release `Date:` and signature time. Defaults to now. */
    readonly date?: Date;
    readonly validUntil?: Date;
    readonly notAutomatic?: boolean;
    readonly butAutomaticUpgrades?: boolean;
    /** How long to wait for another publisher of the same prefix. Defaults to 10 minutes. */
    readonly lockTimeoutMs?: number;
    readonly hooks?: PublishHooks;
    /**
     * Verified hashes of pool files (see `store/hashcache.ts`): a pool file kept from an earlier
     * publish, or a hard link to a download verified in this run, is not read again. Defaults to
     * hashing every pool file.
     */
    readonly hashMemo?: HashMemo;
    /**
     * When the suite published now is exactly what this publish would write (the same `Packages`
     * indexes and compressed forms, the same Release fields, signed by the same key, no
     * `validUntil` to renew) and every pool file it names still has its SHA256, make no new
     * generation: return the current one, with `placed` and `removed` empty. Anything that
     * differs (drift included) publishes normally. Hooks are not called then. Defaults to false.
     */
    readonly skipIfUnchanged?: boolean;
}

/** A package as published: the fields of its upstream record that the indexes carry (`filename` is the pool path). */
export type PublishedPackage = Pick<
    PackageRecord,
    "name" | "version" | "architecture" | "component" | "filename" | "size" | "sha256"
>;

export interface PublishResult {
    /** `<root>/<prefix>`. */
    readonly repoDir: string;
    readonly distribution: string;
    /** The generation now behind `dists/<dist>`. */
    readonly generation: string;
    readonly packages: readonly PublishedPackage[];
    /** The index files the Release lists (paths relative to `dists/<dist>`). */
    readonly indexes: readonly ReleaseFile[];
    /** Pool paths written by this publish, and those found already in place. */
    readonly placed: readonly string[];
    readonly kept: readonly string[];
    /** Pool paths removed because no published suite names them any more. */
    readonly removed: readonly string[];
    /** Fingerprints of the signing keys; empty when unsigned. */
    readonly fingerprints: readonly string[];
    /** Armored public keys for clients' `Signed-By`; "" when unsigned. */
    readonly publicKeyArmored: string;
}

/** What the checks of `planPublish` settle before anything is written. */
interface PublishPlan {
    readonly repoDir: string;
    readonly distribution: string;
    readonly components: readonly string[];
    readonly architectures: readonly string[];
    /** Packages by pool path (duplicates merged). */
    readonly byPool: ReadonlyMap<string, PublishPackage>;
}

function checkLine(argument: string, value: string | undefined): void {
    if (value === undefined) {
        return;
    }
    // A clearsigned text loses trailing white space (RFC 4880 §7.1), so InRelease would not
    // match Release; a line break would start a new field.
    if (typeof value !== "string" || value === "" || value.trim() !== value || /[\r\n]/.test(value)) {
        throw invalidArgument(argument, "must be one line without leading or trailing white space");
    }
}

/** Checks every option and settles the pool layout. Pure: reads and writes nothing. */
export function planPublish(options: PublishOptions): PublishPlan {
    const repoDir = repoDirOf(options.root, options.prefix ?? "");
    checkName("distribution", options.distribution);
    if (options.codename !== undefined) {
        checkName("codename", options.codename);
    }
    for (const field of ["origin", "label", "description", "version"] as const) {
        checkLine(field, options[field]);
    }
    if (options.components.length === 0) {
        throw invalidArgument("components", 'is empty: give at least one component, e.g. ["main"]');
    }
    options.components.forEach((component, i) => {
        const unsafe = unsafePathReason(component);
        if (
            unsafe !== undefined ||
            !component.split("/").every((segment) => /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(segment))
        ) {
            throw invalidArgument(`components[${i}]`, `${JSON.stringify(component)} is not a component name`);
        }
        if (options.components.indexOf(component) !== i) {
            throw invalidArgument(`components[${i}]`, `${JSON.stringify(component)} is listed twice`);
        }
    });
    if (options.architectures.length === 0) {
        throw invalidArgument("architectures", 'is empty: give at least one architecture, e.g. ["amd64"]');
    }
    options.architectures.forEach((architecture, i) => {
        checkName(`architectures[${i}]`, architecture);
        if (architecture === "all") {
            throw invalidArgument(
                `architectures[${i}]`,
                '"all" is not a binary architecture: packages of architecture all go into every binary-<arch> index',
            );
        }
        if (options.architectures.indexOf(architecture) !== i) {
            throw invalidArgument(`architectures[${i}]`, `${JSON.stringify(architecture)} is listed twice`);
        }
    });
    for (const compressor of options.compressors ?? []) {
        if (!/^\.[a-z0-9]+$/.test(compressor.extension) || compressor.extension === ".gz") {
            throw invalidArgument("compressors", `extension ${JSON.stringify(compressor.extension)} is not allowed`);
        }
    }
    const byPool = new Map<string, PublishPackage>();
    options.packages.forEach((pkg, i) => {
        const record = pkg.record;
        const argument = `packages[${i}]`;
        const who = `${record.name} ${record.version} ${record.architecture}`;
        if (!options.components.includes(record.component)) {
            throw invalidArgument(
                `${argument}.record.component`,
                `${who}: component ${JSON.stringify(record.component)} is not in components (${options.components.join(", ")})`,
            );
        }
        if (record.architecture !== "all" && !options.architectures.includes(record.architecture)) {
            throw invalidArgument(
                `${argument}.record.architecture`,
                `${who}: architecture ${record.architecture} is not in architectures (${options.architectures.join(", ")})`,
            );
        }
        if (!/^[0-9a-f]{64}$/.test(record.sha256) || !Number.isSafeInteger(record.size) || record.size < 0) {
            throw invalidArgument(`${argument}.record`, `${who}: needs a lower-case hex SHA256 and a byte size`);
        }
        if (typeof pkg.file !== "string" || pkg.file === "") {
            throw invalidArgument(`${argument}.file`, `${who}: give the local file holding the package`);
        }
        const target = poolPath(record);
        const unsafe = unsafePathReason(target);
        if (unsafe !== undefined) {
            throw invalidArgument(`${argument}.record`, `${who}: pool path ${JSON.stringify(target)} ${unsafe}`);
        }
        const other = byPool.get(target);
        if (other !== undefined && other.record.sha256 !== record.sha256) {
            throw invalidArgument(
                `${argument}.record`,
                `${who}: two different files would be published as ${target} (SHA256 ${other.record.sha256} and ${record.sha256})`,
            );
        }
        if (other === undefined) {
            byPool.set(target, pkg);
        }
    });
    return {
        repoDir,
        distribution: options.distribution,
        components: [...options.components],
        architectures: [...options.architectures],
        byPool,
    };
}

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
    for (const name of record.stanza.order) {
        const key = name.toLowerCase();
        if (FILE_FIELDS.has(key)) {
            if (fileAt < 0) {
                fileAt = fields.length;
            }
            continue;
        }
        seen.add(key);
        fields.push([name, own[key] ?? record.stanza.get(name) ?? ""]);
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

function comparePackages(a: PublishedPackage, b: PublishedPackage): number {
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

/** The uncompressed `Packages` index of every component and architecture, by path under `dists/<dist>`. */
const textsOfPlan = new WeakMap<PublishPlan, Map<string, Buffer>>();

function packagesTexts(plan: PublishPlan): Map<string, Buffer> {
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
    for (const component of plan.components) {
        for (const architecture of plan.architectures) {
            const stanzas = entries
                .filter(
                    ({ pkg }) =>
                        pkg.record.component === component &&
                        (pkg.record.architecture === architecture || pkg.record.architecture === "all"),
                )
                .map(({ pkg, published }) => publishedStanza(pkg.record, published.filename));
            out.set(`${component}/binary-${architecture}/Packages`, Buffer.from(stanzas.join("\n"), "utf8"));
        }
    }
    return out;
}

function describe(record: PackageRecord, filename: string): PublishedPackage {
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

/**
 * Places the pool files of the plan. A target that a published suite names with other content
 * is refused (`ERR_INVALID_ARGUMENT`): replacing it would change a file under published
 * indexes; the same name, version and architecture cannot have two contents.
 */
async function placePool(
    plan: PublishPlan,
    mode: PlaceMode | undefined,
    hashMemo: HashMemo | undefined,
): Promise<{ placed: string[]; kept: string[]; references: PoolReferences }> {
    const references = await referencedPoolFiles(plan.repoDir);
    const placed: string[] = [];
    const kept: string[] = [];
    const targets = [...plan.byPool.keys()].sort();
    for (const target of targets) {
        const published = references.files.get(target);
        const record = plan.byPool.get(target)!.record;
        if (published !== undefined && published !== record.sha256) {
            throw invalidArgument(
                "packages",
                `${record.name} ${record.version} ${record.architecture}: ${target} is already published with SHA256 ${published}, not ${record.sha256}; give the new build another version, or unpublish first`,
            );
        }
    }
    await forEachLimited(targets, 4, async (target) => {
        const pkg = plan.byPool.get(target)!;
        const result = await placePoolFile(
            pkg.file,
            path.join(plan.repoDir, target),
            { sha256: pkg.record.sha256, size: pkg.record.size },
            { mode, hashMemo, published: references.files.has(target) },
        );
        (result === "kept" ? kept : placed).push(target);
    });
    return { placed: placed.sort(), kept: kept.sort(), references };
}

/** Links `source` to `target`, or copies it when links are refused. */
async function linkOrCopy(source: string, target: string): Promise<void> {
    try {
        await fsp.link(source, target);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") {
            return;
        }
        await fsp.copyFile(source, target);
    }
}

/** Every directory below `dir` (itself included), deepest first. */
async function directoriesBottomUp(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
        for (const entry of await fsp.readdir(d, { withFileTypes: true })) {
            if (entry.isDirectory()) {
                await walk(path.join(d, entry.name));
            }
        }
        out.push(d);
    };
    await walk(dir);
    return out;
}

/**
 * Writes a complete suite into `dir`: indexes, by-hash copies (its own and the previous
 * generation's), Release and, when signing, InRelease and Release.gpg; then syncs it.
 */
async function writeSuite(
    dir: string,
    indexes: ReadonlyMap<string, Buffer>,
    releaseText: string,
    signer: ReleaseSigner | undefined,
    date: Date,
    byHash: { enabled: boolean; previousDir?: string },
): Promise<void> {
    for (const [rel, bytes] of indexes) {
        writeFileAtomic(path.join(dir, rel), bytes);
    }
    if (byHash.enabled) {
        for (const [rel, bytes] of indexes) {
            const byHashDir = path.join(dir, path.dirname(rel), "by-hash", "SHA256");
            await fsp.mkdir(byHashDir, { recursive: true });
            await linkOrCopy(path.join(dir, rel), path.join(byHashDir, sha256(bytes)));
        }
        if (byHash.previousDir !== undefined) {
            await carryByHash(byHash.previousDir, dir);
        }
    }
    writeFileAtomic(path.join(dir, "Release"), releaseText);
    if (signer !== undefined) {
        const signed = await signer.sign(releaseText, date);
        writeFileAtomic(path.join(dir, "InRelease"), signed.inRelease);
        writeFileAtomic(path.join(dir, "Release.gpg"), signed.releaseGpg);
    }
    for (const d of await directoriesBottomUp(dir)) {
        await syncPath(d);
    }
}

/**
 * Copies into `dir` the by-hash files of the indexes the previous suite's Release lists, so a
 * client holding that Release can still fetch them after the switch.
 */
async function carryByHash(previousDir: string, dir: string): Promise<void> {
    const text = await readOptional(path.join(previousDir, "Release"));
    if (text === undefined) {
        return;
    }
    let files: readonly ReleaseFile[];
    try {
        files = parseRelease(text.toString("utf8")).files;
    } catch {
        // A previous suite we cannot read has nothing we could carry over safely.
        return;
    }
    for (const file of files) {
        if (file.sha256 === undefined) {
            continue;
        }
        const rel = path.join(path.dirname(file.path), "by-hash", "SHA256", file.sha256);
        const source = path.join(previousDir, rel);
        if ((await fsp.stat(source).catch(() => undefined))?.isFile() !== true) {
            continue;
        }
        await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await linkOrCopy(source, path.join(dir, rel));
    }
}

/**
 * Makes `dists/<dist>` point to `generationDir` with one rename of a symlink over it.
 *
 * A suite published by another tool is a plain directory, which a rename cannot replace: it is
 * moved into `.generations/` first. Between those two renames the suite is absent (a 404 for a
 * client, never a mismatch); that happens once, on the first publish over such a suite.
 */
async function switchSuite(repoDir: string, distribution: string, generationDir: string): Promise<void> {
    const link = distLink(repoDir, distribution);
    const distsDir = path.dirname(link);
    await fsp.mkdir(distsDir, { recursive: true });
    const current = await currentSuite(repoDir, distribution);
    if (current.kind === "directory") {
        await fsp.rename(
            current.dir,
            path.join(generationsOf(repoDir, distribution), `adopted-${randomBytes(4).toString("hex")}`),
        );
    }
    const tmp = path.join(distsDir, `.${distribution}.tmp-${randomBytes(6).toString("hex")}`);
    await fsp.symlink(path.relative(distsDir, generationDir), tmp);
    try {
        await fsp.rename(tmp, link);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    }
    await syncPath(distsDir);
}

/**
 * Removes what no published suite needs: generations of `distribution` other than the current
 * one, staging left-overs, stray temporary symlinks under `dists/`, and, when `collectPoolFiles`,
 * pool files no suite names. Pool files are kept when some suite under `dists/` cannot be read.
 */
async function collectGarbage(
    repoDir: string,
    distribution: string,
    keepGeneration: string | undefined,
    collectPoolFiles: boolean | readonly string[] = true,
) {
    const generations = generationsOf(repoDir, distribution);
    for (const name of await fsp.readdir(generations).catch(() => [] as string[])) {
        if (name !== keepGeneration) {
            await fsp.rm(path.join(generations, name), { recursive: true, force: true });
        }
    }
    await fsp.rm(path.join(repoDir, STAGING_DIR), { recursive: true, force: true });
    for (const name of await fsp.readdir(path.join(repoDir, "dists")).catch(() => [] as string[])) {
        if (name.startsWith(".") && name.includes(".tmp-")) {
            await fsp.rm(path.join(repoDir, "dists", name), { force: true });
        }
    }
    if (collectPoolFiles === false || (Array.isArray(collectPoolFiles) && collectPoolFiles.length === 0)) {
        return [];
    }
    const references = await referencedPoolFiles(repoDir);
    if (!references.complete) {
        return [];
    }
    if (Array.isArray(collectPoolFiles)) {
        // Only these can have become garbage (files the previous suite named and this one does
        // not): remove those no suite names now, without walking the whole pool.
        return removePoolFiles(
            repoDir,
            collectPoolFiles.filter((file) => !references.files.has(file)),
        );
    }
    return collectPool(repoDir, new Set(references.files.keys()));
}

/** What the Release of a publish says, less the date and the files. */
function releaseContent(options: PublishOptions, plan: PublishPlan, date: Date, files: readonly ReleaseFile[]) {
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

/**
 * The result of publishing the current generation again, when that would change nothing but
 * the Release date (see `skipIfUnchanged`); undefined when anything differs. Reads the
 * Release, its indexes and signatures (small files); pool files go through the hash memo.
 */
async function currentIfUnchanged(
    plan: PublishPlan,
    options: PublishOptions,
    signer: ReleaseSigner | undefined,
    current: { generation: string; dir: string },
): Promise<PublishResult | undefined> {
    if (options.validUntil !== undefined) {
        return undefined;
    }
    const releaseBytes = await readOptional(path.join(current.dir, "Release"));
    if (releaseBytes === undefined) {
        return undefined;
    }
    const releaseText = releaseBytes.toString("utf8");
    let release: ReturnType<typeof parseRelease>;
    try {
        release = parseRelease(releaseText);
    } catch {
        return undefined;
    }
    if (release.date === undefined) {
        return undefined;
    }
    // The same index files: every uncompressed index with the same bytes, the same forms.
    const texts = packagesTexts(plan);
    const extensions = ["", ".gz", ...(options.compressors ?? []).map((c) => c.extension)];
    const listed = new Map(release.files.map((file) => [file.path, file]));
    if (listed.size !== release.files.length || listed.size !== texts.size * extensions.length) {
        return undefined;
    }
    for (const [base, text] of texts) {
        const file = listed.get(base);
        if (file === undefined || file.size !== text.length || file.sha256 !== sha256(text)) {
            return undefined;
        }
        if (!extensions.every((extension) => listed.has(`${base}${extension}`))) {
            return undefined;
        }
    }
    // The same Release fields: what this publish would write, with the current date and files.
    let expected: string;
    try {
        expected = formatRelease(releaseContent(options, plan, release.date, release.files));
    } catch {
        return undefined;
    }
    if (expected !== releaseText) {
        return undefined;
    }
    // Every index as the Release lists it, and its by-hash copy.
    const acquireByHash = options.acquireByHash ?? true;
    for (const file of release.files) {
        const bytes = await readOptional(path.join(current.dir, file.path));
        if (bytes === undefined || bytes.length !== file.size || sha256(bytes) !== file.sha256) {
            return undefined;
        }
        if (acquireByHash) {
            const copy = path.join(current.dir, path.dirname(file.path), "by-hash", "SHA256", file.sha256);
            if ((await fsp.stat(copy).catch(() => undefined))?.size !== file.size) {
                return undefined;
            }
        }
    }
    // Signed by the same key, both ways; or unsigned as asked.
    const inRelease = await readOptional(path.join(current.dir, "InRelease"));
    const releaseGpg = await readOptional(path.join(current.dir, "Release.gpg"));
    if (signer === undefined) {
        if (inRelease !== undefined || releaseGpg !== undefined) {
            return undefined;
        }
    } else {
        if (inRelease === undefined || releaseGpg === undefined) {
            return undefined;
        }
        const check = await checkReleaseSignatures(signer.publicKeyArmored, {
            release: releaseBytes,
            inRelease: inRelease.toString("utf8"),
            releaseGpg: releaseGpg.toString("utf8"),
        });
        if (check.inRelease !== "valid" || check.releaseGpg !== "valid" || check.inReleaseMatchesRelease !== true) {
            return undefined;
        }
    }
    // Every pool file with its SHA256.
    const targets = [...plan.byPool.keys()].sort();
    let intact = true;
    await forEachLimited(targets, 4, async (target) => {
        if (!intact) {
            return;
        }
        const record = plan.byPool.get(target)!.record;
        const found = await verifiedSha256(path.join(plan.repoDir, target), options.hashMemo);
        if (found === undefined || found.sha256 !== record.sha256 || found.size !== record.size) {
            intact = false;
        }
    });
    if (!intact) {
        return undefined;
    }
    return {
        repoDir: plan.repoDir,
        distribution: plan.distribution,
        generation: current.generation,
        packages: [...plan.byPool].map(([filename, pkg]) => describe(pkg.record, filename)).sort(comparePackages),
        indexes: [...release.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
        placed: [],
        kept: targets,
        removed: [],
        fingerprints: signer?.fingerprints ?? [],
        publicKeyArmored: signer?.publicKeyArmored ?? "",
    };
}

/**
 * Publishes `options.packages` as the suite `options.distribution` under
 * `<root>/<prefix>`, atomically (see the module comment). Rejects with an
 * `ERR_INVALID_ARGUMENT` AirgapError naming the argument before writing anything when an
 * option is wrong, the signing key cannot be used, or signing is missing without
 * `allowUnsigned`; with `ERR_VERIFICATION` when a package file does not match its record.
 */
export async function publishRepo(options: PublishOptions): Promise<PublishResult> {
    const plan = planPublish(options);
    let signer: ReleaseSigner | undefined;
    if (options.signing !== undefined) {
        signer = await loadSigningKey(options.signing, "signing");
    } else if (options.allowUnsigned !== true) {
        throw invalidArgument(
            "signing",
            "is missing: give signing.privateKey (an armored private key), or set allowUnsigned: true to publish a repository clients must be told to trust blindly",
        );
    }
    const date = options.date ?? new Date();
    const acquireByHash = options.acquireByHash ?? true;
    const lock = await lockRepo(plan.repoDir, options.lockTimeoutMs ?? 600_000);
    try {
        // Whatever is in staging belongs to a run that did not finish; such a run may also have
        // left pool files (placed, never published) and temporary files in the pool.
        const stagingRoot = path.join(plan.repoDir, STAGING_DIR);
        const unfinished = (await fsp.lstat(stagingRoot).catch(() => undefined)) !== undefined;
        await fsp.rm(stagingRoot, { recursive: true, force: true });
        const previous = await currentSuite(plan.repoDir, plan.distribution);
        if (options.skipIfUnchanged === true && !unfinished && previous.kind === "generation") {
            const unchanged = await currentIfUnchanged(plan, options, signer, previous);
            if (unchanged !== undefined) {
                return unchanged;
            }
        }

        // `.staging/` exists from here until the garbage is collected: it marks the run unfinished.
        await fsp.mkdir(stagingRoot, { recursive: true });
        const { placed, kept, references } = await placePool(plan, options.placeMode, options.hashMemo);
        await options.hooks?.afterPool?.();

        const indexes = await buildIndexes(plan, options.compressors ?? []);
        const files: ReleaseFile[] = [...indexes].map(([rel, bytes]) => ({
            path: rel,
            size: bytes.length,
            sha256: sha256(bytes),
        }));
        const releaseText = formatRelease(releaseContent(options, plan, date, files));

        const generation = newGenerationName(date);
        const staging = path.join(plan.repoDir, STAGING_DIR, `${plan.distribution}-${generation}`);
        await fsp.mkdir(staging, { recursive: true });
        await writeSuite(staging, indexes, releaseText, signer, date, {
            enabled: acquireByHash,
            previousDir: previous.kind === "none" ? undefined : previous.dir,
        });
        const generations = generationsOf(plan.repoDir, plan.distribution);
        await fsp.mkdir(generations, { recursive: true });
        const generationDir = path.join(generations, generation);
        await fsp.rename(staging, generationDir);
        await syncPath(generations);

        await options.hooks?.beforeSwitch?.({ generation, dir: generationDir });
        await switchSuite(plan.repoDir, plan.distribution, generationDir);
        await options.hooks?.afterSwitch?.({ generation, dir: generationDir });

        // A run that did not finish may have left anything in the pool: walk it all. Otherwise
        // only the files the published suites named before and this suite drops are candidates.
        const walkPool = unfinished || previous.kind === "directory" || !references.complete;
        const dropped =
            previous.kind === "generation" ? [...references.files.keys()].filter((file) => !plan.byPool.has(file)) : [];
        const removed = await collectGarbage(plan.repoDir, plan.distribution, generation, walkPool ? true : dropped);
        return {
            repoDir: plan.repoDir,
            distribution: plan.distribution,
            generation,
            packages: [...plan.byPool].map(([filename, pkg]) => describe(pkg.record, filename)).sort(comparePackages),
            indexes: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
            placed,
            kept,
            removed,
            fingerprints: signer?.fingerprints ?? [],
            publicKeyArmored: signer?.publicKeyArmored ?? "",
        };
    } finally {
        await lock.release();
    }
}

export interface UnpublishOptions {
    /** Remove only this suite (and the pool files no other suite names). Defaults to every suite of the prefix. */
    readonly distribution?: string;
    /** Defaults to 10 minutes. */
    readonly lockTimeoutMs?: number;
}

/**
 * Removes what the publisher put under `<root>/<prefix>`: `dists/`, `pool/`, `.generations/`,
 * `.staging/` and the lock, then the prefix directory and its parents up to `root` when they
 * are left empty. Anything else there (another prefix nested below, files of other tools) is
 * left alone. With `distribution`, removes that suite only, and the whole prefix once no suite
 * is left. Returns whether anything was removed.
 */
export async function unpublish(root: string, prefix: string, options: UnpublishOptions = {}): Promise<boolean> {
    const repoDir = repoDirOf(root, prefix);
    if (options.distribution !== undefined) {
        checkName("distribution", options.distribution);
    }
    if ((await fsp.stat(repoDir).catch(() => undefined)) === undefined) {
        return false;
    }
    const lock = await lockRepo(repoDir, options.lockTimeoutMs ?? 600_000);
    let removedAll = true;
    let removedSomething = false;
    try {
        if (options.distribution !== undefined) {
            const link = distLink(repoDir, options.distribution);
            removedSomething = (await fsp.lstat(link).catch(() => undefined)) !== undefined;
            await fsp.rm(link, { recursive: true, force: true });
            await fsp.rm(generationsOf(repoDir, options.distribution), { recursive: true, force: true });
            const left = (await fsp.readdir(path.join(repoDir, "dists")).catch(() => [] as string[])).filter(
                (name) => !name.startsWith("."),
            );
            if (left.length > 0) {
                removedAll = false;
                const references = await referencedPoolFiles(repoDir);
                if (references.complete) {
                    removedSomething =
                        (await collectPool(repoDir, new Set(references.files.keys()))).length > 0 || removedSomething;
                }
            }
        }
        if (removedAll) {
            for (const name of ["dists", "pool", GENERATIONS_DIR, STAGING_DIR]) {
                const target = path.join(repoDir, name);
                if ((await fsp.lstat(target).catch(() => undefined)) !== undefined) {
                    removedSomething = true;
                    await fsp.rm(target, { recursive: true, force: true });
                }
            }
        }
    } finally {
        await lock.release();
    }
    if (removedAll) {
        const top = path.resolve(root);
        for (let dir = repoDir; dir !== top && dir.startsWith(`${top}${path.sep}`); dir = path.dirname(dir)) {
            try {
                await fsp.rmdir(dir);
            } catch {
                break;
            }
        }
    }
    return removedSomething;
}
