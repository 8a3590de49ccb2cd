/**
 * Reading a published suite back, for drift detection (`read()` of the dynamic provider): what
 * is published, and everything about it that no longer holds.
 *
 * Checks, each reported by repository-relative path:
 * - `Release` exists and parses; `InRelease`'s text is the `Release` text;
 * - with a public key: `InRelease` and `Release.gpg` carry valid signatures by it;
 * - every index the `Release` lists exists with its listed size and SHA256;
 * - every pool file the `Packages` indexes name exists with its listed size and SHA256; so do
 *   the files of the `Sources` and debian-installer `Packages` indexes (`withSources`, `udebs`).
 *
 * Tolerant on purpose: it runs the provider code stored in state against whatever is on disk,
 * including suites another tool published, and never throws for a problem it can report.
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { checkReleaseSignatures, type ReleaseSignatureCheck } from "../pgp/sign";
import { sha256 } from "../store/atomic";
import { eachStanza, toPackageRecord } from "./control";
import type { Stanza } from "./types";
import { hashFile } from "./pool";
import { toSourceRecord } from "./sources";
import type { PublishedPackage } from "./publish";
import { checkName, currentSuite, distLink, indexText, readOptional, repoDirOf } from "./publish_layout";
import { extractClearsigned, parseRelease, type Release } from "./release";

export type PublishedProblemKind =
    /** No `Release` (or it does not parse). */
    | "release"
    /** `InRelease` or `Release.gpg` is absent, does not verify, or signs another text. */
    | "signature"
    /** An index the Release lists is absent. */
    | "missing-index"
    /** An index differs in size or SHA256 from the Release, or does not parse. */
    | "altered-index"
    /** A pool file an index names is absent. */
    | "missing-pool-file"
    /** A pool file differs in size or SHA256 from its index entry. */
    | "altered-pool-file";

export interface PublishedProblem {
    readonly kind: PublishedProblemKind;
    /** Relative to `<root>/<prefix>`, e.g. "pool/main/h/hello/hello_1.0_amd64.deb". */
    readonly path: string;
    readonly message: string;
}

export interface PublishedState {
    /** `<root>/<prefix>`. */
    readonly repoDir: string;
    readonly distribution: string;
    /** False when `dists/<dist>` does not exist (never published, or unpublished). */
    readonly exists: boolean;
    /** The generation behind `dists/<dist>`; undefined for a suite another tool published. */
    readonly generation?: string;
    readonly release?: Release;
    /** Packages the indexes list, one per pool file (an `all` package once), sorted by path. */
    readonly packages: readonly PublishedPackage[];
    /** The other pool files the indexes name: source package files, installer packages (udebs). */
    readonly otherPoolFiles?: readonly Pick<PublishedPackage, "name" | "version" | "filename" | "size" | "sha256">[];
    /** Undefined when no public key was given. */
    readonly signature?: ReleaseSignatureCheck;
    readonly problems: readonly PublishedProblem[];
    /** True when the suite exists and has no problem. */
    readonly ok: boolean;
}

export interface ReadPublishedOptions {
    /** Armored public key(s) the suite must be signed with. Without it signatures are not checked. */
    readonly publicKey?: string;
    /** Hash every pool file (true, the default) or only compare sizes. */
    readonly hashPoolFiles?: boolean;
}

/** Re-checks the suite `distribution` published under `<root>/<prefix>` (see the module comment). */
export async function readPublished(
    root: string,
    prefix: string,
    distribution: string,
    options: ReadPublishedOptions = {},
): Promise<PublishedState> {
    const repoDir = repoDirOf(root, prefix);
    checkName("distribution", distribution);
    const problems: PublishedProblem[] = [];
    const suitePath = `dists/${distribution}`;
    const current = await currentSuite(repoDir, distribution).catch(() => ({ kind: "none" }) as const);
    const base = { repoDir, distribution };
    if (current.kind === "none") {
        return { ...base, exists: false, packages: [], problems, ok: false };
    }
    const generation = current.kind === "generation" ? current.generation : undefined;
    const suiteDir = distLink(repoDir, distribution);

    const releaseBytes = await readOptional(path.join(suiteDir, "Release"));
    const inRelease = (await readOptional(path.join(suiteDir, "InRelease")))?.toString("utf8");
    const releaseGpg = (await readOptional(path.join(suiteDir, "Release.gpg")))?.toString("utf8");
    let release: Release | undefined;
    let releaseText = releaseBytes?.toString("utf8");
    if (releaseText === undefined && inRelease !== undefined) {
        // Some publishers write only InRelease; its text is the Release.
        try {
            releaseText = `${extractClearsigned(inRelease).payload}\n`;
        } catch {
            // Reported below as a signature problem.
        }
    }
    if (releaseText === undefined) {
        problems.push({ kind: "release", path: `${suitePath}/Release`, message: "no Release file" });
    } else {
        try {
            release = parseRelease(releaseText);
        } catch (err) {
            problems.push({ kind: "release", path: `${suitePath}/Release`, message: messageOf(err) });
        }
    }

    let signature: ReleaseSignatureCheck | undefined;
    if (releaseText !== undefined && options.publicKey !== undefined) {
        signature = await checkReleaseSignatures(options.publicKey, {
            release: releaseBytes ?? Buffer.from(releaseText, "utf8"),
            inRelease,
            releaseGpg,
        });
        for (const [name, state] of [
            ["InRelease", signature.inRelease],
            ["Release.gpg", signature.releaseGpg],
        ] as const) {
            if (state !== "valid" && !(name === "Release.gpg" && releaseBytes === undefined)) {
                const detail = signature.problems.find((p) => p.startsWith(`${name}:`));
                problems.push({
                    kind: "signature",
                    path: `${suitePath}/${name}`,
                    message: state === "missing" ? `no ${name}` : (detail ?? `${name} does not verify`),
                });
            }
        }
    }
    if (inRelease !== undefined && releaseBytes !== undefined) {
        let matches = signature?.inReleaseMatchesRelease;
        if (matches === undefined) {
            try {
                const text = releaseBytes.toString("utf8");
                matches = extractClearsigned(inRelease).payload === (text.endsWith("\n") ? text.slice(0, -1) : text);
            } catch {
                matches = false;
            }
        }
        if (!matches) {
            problems.push({
                kind: "signature",
                path: `${suitePath}/InRelease`,
                message: "the signed text of InRelease is not the Release file beside it",
            });
        }
    }

    const packages = new Map<string, PublishedPackage>();
    const indexBytes = new Map<string, Buffer>();
    if (release !== undefined) {
        for (const file of release.files) {
            const rel = `${suitePath}/${file.path}`;
            const bytes = await readOptional(path.join(suiteDir, file.path));
            if (bytes === undefined && isUnservedContents(release, file.path)) {
                continue;
            }
            if (bytes === undefined) {
                problems.push({ kind: "missing-index", path: rel, message: "listed in Release, absent" });
                continue;
            }
            indexBytes.set(file.path, bytes);
            if (bytes.length !== file.size || (file.sha256 !== undefined && sha256(bytes) !== file.sha256)) {
                problems.push({
                    kind: "altered-index",
                    path: rel,
                    message: `Release lists ${file.size} bytes with SHA256 ${file.sha256}, found ${bytes.length} bytes with SHA256 ${sha256(bytes)}`,
                });
            }
        }
        for (const component of release.components) {
            for (const architecture of release.architectures) {
                const basePath = `${component}/binary-${architecture}/Packages`;
                const name = indexBytes.has(basePath) ? basePath : `${basePath}.gz`;
                const bytes = indexBytes.get(name);
                if (bytes === undefined) {
                    continue;
                }
                try {
                    for (const stanza of eachStanza(indexText(name, bytes))) {
                        const record = toPackageRecord(stanza, component);
                        packages.set(record.filename, {
                            name: record.name,
                            version: record.version,
                            architecture: record.architecture,
                            component,
                            filename: record.filename,
                            size: record.size,
                            sha256: record.sha256,
                        });
                    }
                } catch (err) {
                    problems.push({ kind: "altered-index", path: `${suitePath}/${name}`, message: messageOf(err) });
                }
            }
        }
    }

    const sorted = [...packages.values()].sort((a, b) =>
        a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0,
    );
    const others = release === undefined ? [] : otherPoolFiles(release, indexBytes, suitePath, problems);
    for (const pkg of [...sorted, ...others]) {
        const file = path.join(repoDir, pkg.filename);
        const info = await fsp.stat(file).catch(() => undefined);
        if (info === undefined || !info.isFile()) {
            problems.push({
                kind: "missing-pool-file",
                path: pkg.filename,
                message: `${pkg.name} ${pkg.version}: absent`,
            });
            continue;
        }
        if (info.size !== pkg.size) {
            problems.push({
                kind: "altered-pool-file",
                path: pkg.filename,
                message: `${pkg.name} ${pkg.version}: ${info.size} bytes, the index says ${pkg.size}`,
            });
            continue;
        }
        if (options.hashPoolFiles ?? true) {
            const actual = await hashFile(file);
            if (actual?.sha256 !== pkg.sha256) {
                problems.push({
                    kind: "altered-pool-file",
                    path: pkg.filename,
                    message: `${pkg.name} ${pkg.version}: SHA256 ${actual?.sha256}, the index says ${pkg.sha256}`,
                });
            }
        }
    }
    return {
        ...base,
        exists: true,
        generation,
        release,
        packages: sorted,
        otherPoolFiles: others,
        signature,
        problems,
        ok: problems.length === 0,
    };
}

function messageOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

/** A plain `Contents-<arch>` is listed in the Release but only its `.gz` is published, as in Debian's archive. */
function isUnservedContents(release: { files: readonly { path: string }[] }, file: string): boolean {
    return /(^|\/)Contents-[^/]+$/.test(file) && release.files.some((f) => f.path === `${file}.gz`);
}

/**
 * The pool files the `Sources` and debian-installer `Packages` indexes of a suite name, as
 * `{ name, version, filename, size, sha256 }` (not packages of the lock); an index that does not
 * parse is a problem.
 */
function otherPoolFiles(
    release: Release,
    indexBytes: ReadonlyMap<string, Buffer>,
    suitePath: string,
    problems: PublishedProblem[],
): Pick<PublishedPackage, "name" | "version" | "filename" | "size" | "sha256">[] {
    const out = new Map<string, Pick<PublishedPackage, "name" | "version" | "filename" | "size" | "sha256">>();
    const read = (basePath: string, each: (stanza: Stanza) => void) => {
        const name = indexBytes.has(basePath) ? basePath : `${basePath}.gz`;
        const bytes = indexBytes.get(name);
        if (bytes === undefined) {
            return;
        }
        try {
            for (const stanza of eachStanza(indexText(name, bytes))) {
                each(stanza);
            }
        } catch (err) {
            problems.push({ kind: "altered-index", path: `${suitePath}/${name}`, message: messageOf(err) });
        }
    };
    for (const component of release.components) {
        read(`${component}/source/Sources`, (stanza) => {
            const source = toSourceRecord(stanza, component);
            for (const f of source.files) {
                const filename = `${source.directory}/${f.name}`;
                out.set(filename, {
                    name: source.name,
                    version: source.version,
                    filename,
                    size: f.size,
                    sha256: f.sha256,
                });
            }
        });
        for (const architecture of release.architectures) {
            read(`${component}/debian-installer/binary-${architecture}/Packages`, (stanza) => {
                const r = toPackageRecord(stanza, component);
                out.set(r.filename, {
                    name: r.name,
                    version: r.version,
                    filename: r.filename,
                    size: r.size,
                    sha256: r.sha256,
                });
            });
        }
    }
    return [...out.values()].sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
}
