/**
 * Publishing a signed APT repository from verified packages: what replaces `aptly publish`.
 *
 * `publishRepo` runs these steps, in this order, under the repository's lock:
 *
 *   1. check the options and load the signing key (nothing is written when either fails;
 *      `publish_plan.ts`);
 *   2. place the pool files that are new (`pool.ts`: content-checked, never rewritten);
 *   3. build the suite aside in `.staging/`: `Packages{,.gz,...}` per component and
 *      architecture (`publish_indexes.ts`), their by-hash copies, `Release`, `InRelease`,
 *      `Release.gpg`; sync it and move it to `.generations/<dist>/<gen>`;
 *   4. switch: rename a fresh symlink over `dists/<dist>` (atomic, see `publish_layout.ts`);
 *   5. collect garbage: other generations of the suite, staging left-overs, and pool files no
 *      published suite names.
 *
 * Steps 2 to 5 are in `publish_suite.ts`; this module runs them (`publishRepo`), decides when a
 * publish would change nothing (`currentIfUnchanged`), and unpublishes.
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

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors";
import { checkReleaseSignatures, loadSigningKey, type ReleaseSigner } from "../pgp/sign";
import { sha256, syncPath } from "../store/atomic";
import { verifiedSha256 } from "../store/hashcache";
import { buildContents, type ContentsFile, contentsPackagesOf } from "./contents";
import { collectPool } from "./pool";
import {
    checkName,
    currentSuite,
    distLink,
    GENERATIONS_DIR,
    generationsOf,
    lockRepo,
    newGenerationName,
    readOptional,
    referencedPoolFiles,
    repoDirOf,
    STAGING_DIR,
} from "./publish_layout";
import { formatRelease, parseRelease, type ReleaseFile } from "./release";
import { forEachLimited } from "../store/concurrency";
import { buildIndexes, comparePackages, describe, packagesTexts, releaseContent } from "./publish_indexes";
import { type PublishOptions, type PublishPlan, type PublishResult, planPublish } from "./publish_plan";
import { collectGarbage, placePool, switchSuite, writeSuite } from "./publish_suite";

export * from "./publish_indexes";
export * from "./publish_plan";

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
    // Contents indexes are built from the pool files: not compared, published again.
    if (options.validUntil !== undefined || plan.contents === true) {
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
    const poolFiles = new Map<string, { sha256: string; size: number }>([
        ...[...plan.byPool].map(([target, pkg]): [string, { sha256: string; size: number }] => [target, pkg.record]),
        ...(plan.extraPool ?? []),
    ]);
    const targets = [...poolFiles.keys()].sort();
    let intact = true;
    await forEachLimited(targets, 4, async (target) => {
        if (!intact) {
            return;
        }
        const record = poolFiles.get(target)!;
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

/** The index files of a publish, started ahead of it: see `prepareIndexes`. */
export interface PreparedIndexes {
    /** The options they were built for: `publishRepo` uses them only with the same object. */
    readonly options: PublishOptions;
    readonly plan: PublishPlan;
    readonly indexes: Promise<Map<string, Buffer>>;
}

/**
 * Starts building the index files of `publishRepo(options)` now, e.g. while the packages
 * download: they depend on the records only, and compressing a large `Packages` (xz in its own
 * process) would otherwise keep the publish waiting. Writes nothing. Undefined when the options
 * are wrong: `publishRepo` reports that.
 */
export function prepareIndexes(options: PublishOptions): PreparedIndexes | undefined {
    let plan: PublishPlan;
    try {
        plan = planPublish(options);
    } catch {
        return undefined;
    }
    const indexes = buildIndexes(plan, options.compressors ?? []);
    // Awaited by publishRepo; a publish that never comes must not leave an unhandled rejection.
    indexes.catch(() => undefined);
    return { options, plan, indexes };
}

/**
 * Publishes `options.packages` as the suite `options.distribution` under
 * `<root>/<prefix>`, atomically (see the module comment). Rejects with an
 * `ERR_INVALID_ARGUMENT` AirgapError naming the argument before writing anything when an
 * option is wrong, the signing key cannot be used, or signing is missing without
 * `allowUnsigned`; with `ERR_VERIFICATION` when a package file does not match its record.
 * `prepared` (from `prepareIndexes` with the same options object) saves building the indexes.
 */
export async function publishRepo(options: PublishOptions, prepared?: PreparedIndexes): Promise<PublishResult> {
    const ready = prepared?.options === options ? prepared : undefined;
    const plan = ready?.plan ?? planPublish(options);
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
        // The compressors run while the pool files are placed.
        const building = ready?.indexes ?? buildIndexes(plan, options.compressors ?? []);
        building.catch(() => undefined);
        const { placed, kept, references } = await placePool(plan, options.placeMode, options.hashMemo);
        await options.hooks?.afterPool?.();

        const indexes = await building;
        const contents =
            plan.contents === true
                ? await buildContents({
                      packages: contentsPackagesOf(plan),
                      components: plan.components,
                      architectures: plan.architectures,
                      workDir: path.join(stagingRoot, `contents-${newGenerationName(date)}`),
                  })
                : new Map<string, ContentsFile>();
        const files: ReleaseFile[] = [
            ...[...indexes].map(([rel, bytes]) => ({ path: rel, size: bytes.length, sha256: sha256(bytes) })),
            ...[...contents].flatMap(([rel, f]) => [
                { path: rel, size: f.size, sha256: f.sha256 },
                { path: rel.replace(/\.gz$/, ""), size: f.plain.size, sha256: f.plain.sha256 },
            ]),
        ];
        const releaseText = formatRelease(releaseContent(options, plan, date, files));

        const generation = newGenerationName(date);
        const staging = path.join(plan.repoDir, STAGING_DIR, `${plan.distribution}-${generation}`);
        await fsp.mkdir(staging, { recursive: true });
        await writeSuite(
            staging,
            indexes,
            releaseText,
            signer,
            date,
            {
                enabled: acquireByHash,
                previousDir: previous.kind === "none" ? undefined : previous.dir,
            },
            contents,
        );
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
            previous.kind === "generation"
                ? [...references.files.keys()].filter((file) => !plan.byPool.has(file) && !plan.extraPool?.has(file))
                : [];
        // The previous generation stays until the next publish: clients that read its indexes
        // just before the switch still find every file they name.
        const keep = previous.kind === "generation" ? [generation, previous.generation] : [generation];
        const removed = await collectGarbage(plan.repoDir, plan.distribution, keep, walkPool ? true : dropped);
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
