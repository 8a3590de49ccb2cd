/**
 * The content a mirror VM carries, from the mirrors and sources a program declares: its digest
 * (what decides a rebuild, and what preview shows), its size (checked against `maxSize` before
 * anything is built) and its staging as the tree the data filesystem is made from.
 *
 * Parts, each named the way preview shows it:
 * - `apt <prefix>/dists/<suite>`: SHA256 of the published `Release` (which lists every index,
 *   which list every pool file by SHA256);
 * - `image <source reference>`: the manifest digest mirrored;
 * - `files <path>`: SHA256 of the sorted list of (relative path, executable, SHA256) of the tree;
 * - `git <path>`: SHA256 of the repository's refs and HEAD (git's objects are content-addressed).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { unsafePathReason } from "../apt/control";
import { distLink } from "../apt/publish_layout";
import { readPublished } from "../apt/publish_read";
import { AirgapError, invalidArgument } from "../errors";
import { parseDockerReference } from "../oci/reference";
import { canonicalJson } from "../store/canonical";
import type { HashMemo } from "../store/hashcache";
import { sha256OfFile } from "../store/hashcache";

const run = promisify(execFile);

/** A published APT suite: an AptMirror's `publish` place. */
export interface VmAptSpec {
    root: string;
    prefix: string;
    distribution: string;
    /** Armored key the suite is signed with; checked, and handed to hosts. */
    publicKey?: string;
}

/** An ImageMirror's result: its lock and where each image went. */
export interface VmImagesSpec {
    /** Source reference → manifest digest. */
    images: Record<string, string>;
    /** Source reference → the image at the destination, by digest. */
    mirrored: Record<string, string>;
}

/** A directory or repository copied in, and where it is served. */
export interface VmPathSpec {
    source: string;
    /** Relative path under the service's root, e.g. "images" or "model.git". */
    path: string;
}

export interface VmContentSpec {
    apt: VmAptSpec[];
    images: VmImagesSpec[];
    files: VmPathSpec[];
    git: VmPathSpec[];
}

/** One image for the VM's registry (the shape the registry storage writer takes). */
export interface VmImage {
    /** The source reference, as the ImageMirror's lock names it. */
    source: string;
    location: string;
    repository: string;
    tag?: string;
    digest: string;
    /** The registry the image comes from, as hosts pull it (`quay.io`, `registry.local:5000`). */
    sourceDomain: string;
}

/** Where a host finds each suite, and its components (from the published Release). */
export interface VmAptSuite extends VmAptSpec {
    components: string[];
    architectures: string[];
}

/** A part of the content: its name, digest and bytes. */
export interface ContentPart {
    name: string;
    digest: string;
    bytes: number;
}

const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+~@=-]*$/;

/** A relative path under a service root: `/`-separated, no empty, dot-leading or `..` segment. */
export function checkServedPath(argument: string, value: unknown): string {
    if (typeof value !== "string" || value === "") {
        throw invalidArgument(argument, `${JSON.stringify(value)} must be a relative path such as "images"`);
    }
    const trimmed = value.replace(/\/+$/, "");
    const unsafe = unsafePathReason(trimmed);
    if (unsafe !== undefined || !trimmed.split("/").every((s) => SAFE_SEGMENT.test(s))) {
        throw invalidArgument(
            argument,
            `${JSON.stringify(value)} ${unsafe ?? "must be made of names of letters, digits and . _ + ~ @ = - (not starting with a dot)"}`,
        );
    }
    return trimmed;
}

/**
 * A source registry as the first path component of a repository in the VM's registry:
 * lower case, a port joined with "-" (`registry.local:5000` → `registry.local-5000`), the brackets
 * of an IPv6 address dropped and its colons joined with "-".
 */
export function domainComponent(domain: string): string {
    return domain.toLowerCase().replace(/[[\]]/g, "").replace(/:/g, "-");
}

/** The images of every ImageMirror, as the VM's registry stores them: `<registry>/<path>[:tag]`. */
export function vmImages(sets: readonly VmImagesSpec[]): VmImage[] {
    const out = new Map<string, VmImage>();
    for (const [i, set] of sets.entries()) {
        for (const [source, digest] of Object.entries(set.images ?? {})) {
            const location = set.mirrored?.[source];
            if (location === undefined) {
                throw invalidArgument(`images[${i}]`, `${source} is in the lock but was not mirrored`);
            }
            const ref = parseDockerReference(source);
            const repository = `${domainComponent(ref.domain)}/${ref.path}`;
            const image: VmImage = {
                source,
                location,
                repository,
                digest,
                sourceDomain: ref.domain,
                ...(ref.tag === undefined ? {} : { tag: ref.tag }),
            };
            const key = `${repository}:${ref.tag ?? ""}@${digest}`;
            out.set(key, image);
        }
    }
    return [...out.values()].sort((a, b) => (a.repository + a.tag < b.repository + b.tag ? -1 : 1));
}

/** Files of a tree in sorted order, relative paths; symlinks and special files are refused. */
export async function walkFiles(
    argument: string,
    root: string,
): Promise<{ rel: string; size: number; mode: number }[]> {
    const info = await fsp.stat(root).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) {
        throw invalidArgument(argument, `"${root}" does not exist or is not a directory`);
    }
    const out: { rel: string; size: number; mode: number }[] = [];
    const visit = async (dir: string, rel: string): Promise<void> => {
        const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) =>
            a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
        );
        for (const e of entries) {
            const r = rel === "" ? e.name : `${rel}/${e.name}`;
            const full = path.join(dir, e.name);
            if (e.isDirectory()) {
                await visit(full, r);
            } else if (e.isFile()) {
                const s = await fsp.stat(full);
                out.push({ rel: r, size: s.size, mode: s.mode });
            } else {
                throw invalidArgument(
                    argument,
                    `"${full}" is a ${e.isSymbolicLink() ? "symbolic link" : "special file"}: only directories and regular files are copied into the image`,
                );
            }
        }
    };
    await visit(root, "");
    return out;
}

async function gitDir(argument: string, source: string): Promise<string> {
    try {
        const { stdout } = await run("git", [
            "-c",
            "safe.directory=*",
            "-C",
            source,
            "rev-parse",
            "--absolute-git-dir",
        ]);
        return stdout.trim();
    } catch (err) {
        throw invalidArgument(argument, `"${source}" is not a git repository: ${errText(err)}`);
    }
}

function errText(err: unknown): string {
    const e = err as { stderr?: string; message?: string };
    return (e.stderr || e.message || String(err)).trim().split("\n").slice(-3).join(" ");
}

async function gitRefsDigest(argument: string, source: string): Promise<{ digest: string; bytes: number }> {
    const dir = await gitDir(argument, source);
    const git = (args: string[]) => run("git", ["-c", "safe.directory=*", "--git-dir", dir, ...args]);
    const refs = (await git(["for-each-ref", "--format=%(objectname) %(refname)"])).stdout;
    if (refs.trim() === "") {
        throw invalidArgument(argument, `"${source}" has no branches or tags: nothing to serve`);
    }
    const head = (await git(["symbolic-ref", "-q", "HEAD"]).catch(() => ({ stdout: "" }))).stdout.trim();
    return { digest: sha256Text(`${head}\n${refs}`), bytes: await treeBytes(dir) };
}

async function treeBytes(dir: string): Promise<number> {
    let total = 0;
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) total += await treeBytes(full);
        else if (e.isFile()) total += (await fsp.stat(full)).size;
    }
    return total;
}

function sha256Text(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/** A published suite, checked: an error naming `apt[i]` when it is missing or damaged. */
export async function readAptSuite(argument: string, spec: VmAptSpec, hashPoolFiles: boolean) {
    const state = await readPublished(spec.root, spec.prefix, spec.distribution, {
        ...(spec.publicKey ? { publicKey: spec.publicKey } : {}),
        hashPoolFiles,
    });
    const where = `${spec.root}/${spec.prefix === "" ? "" : `${spec.prefix}/`}dists/${spec.distribution}`;
    if (!state.exists || state.release === undefined) {
        throw new AirgapError("ERR_NOT_FOUND", `${argument}: ${where} is not published`, { argument });
    }
    if (!state.ok) {
        const shown = state.problems.slice(0, 5).map((p) => `  ${p.path}: ${p.message}`);
        throw new AirgapError(
            "ERR_VERIFICATION",
            `${argument}: the published tree at ${where} has ${state.problems.length} problem(s); sync the AptMirror again:\n${shown.join("\n")}`,
            { argument },
        );
    }
    return state;
}

/** Every part of the content with its digest and size. Reads the APT Release files and hashes the files trees. */
export async function contentParts(
    spec: VmContentSpec,
    options: { memo?: HashMemo; imageBytes?: (images: VmImage[]) => Promise<number> } = {},
): Promise<ContentPart[]> {
    const parts: ContentPart[] = [];
    const names = new Set<string>();
    const add = (argument: string, part: ContentPart) => {
        if (names.has(part.name)) {
            throw invalidArgument(argument, `${part.name} is listed twice`);
        }
        names.add(part.name);
        parts.push(part);
    };
    for (const [i, apt] of spec.apt.entries()) {
        const argument = `apt[${i}]`;
        const state = await readAptSuite(argument, apt, false);
        const release = await fsp.readFile(path.join(distLink(state.repoDir, apt.distribution), "Release"));
        let bytes = release.length;
        for (const p of [...state.packages, ...(state.otherPoolFiles ?? [])]) bytes += p.size;
        const prefix = apt.prefix === "" ? "" : `${apt.prefix.replace(/\/+$/, "")}/`;
        add(argument, {
            name: `apt ${prefix}dists/${apt.distribution}`,
            digest: createHash("sha256").update(release).digest("hex"),
            bytes: bytes + (await treeBytes(await fsp.realpath(distLink(state.repoDir, apt.distribution)))),
        });
    }
    const images = vmImages(spec.images);
    for (const image of images) {
        add("images", {
            name: `image ${image.source}`,
            digest: image.digest,
            bytes: 0,
        });
    }
    if (images.length > 0 && options.imageBytes !== undefined) {
        // Blobs shared between images are stored once: one figure for all of them.
        parts.push({ name: "image blobs", digest: "", bytes: await options.imageBytes(images) });
    }
    for (const [i, f] of spec.files.entries()) {
        const argument = `files[${i}]`;
        const served = checkServedPath(`${argument}.path`, f.path);
        const list = await walkFiles(`${argument}.source`, f.source);
        const lines: string[] = [];
        let bytes = 0;
        for (const file of list) {
            const full = path.join(f.source, file.rel);
            const sum = options.memo ? (await options.memo.verifiedSha256(full))?.sha256 : await sha256OfFile(full);
            lines.push(`${file.rel}\0${file.mode & 0o111 ? "x" : "-"}\0${sum}`);
            bytes += file.size;
        }
        add(argument, { name: `files ${served}`, digest: sha256Text(lines.join("\n")), bytes });
    }
    for (const [i, g] of spec.git.entries()) {
        const argument = `git[${i}]`;
        const served = checkServedPath(`${argument}.path`, g.path);
        const { digest, bytes } = await gitRefsDigest(`${argument}.source`, g.source);
        add(argument, { name: `git ${served}`, digest, bytes });
    }
    return parts;
}

/** The digest of the content: the same content gives the same digest, whatever else the build takes. */
export function contentDigest(parts: readonly ContentPart[]): string {
    const record: Record<string, string> = {};
    for (const p of parts) if (p.digest !== "") record[p.name] = p.digest;
    return `sha256:${sha256Text(canonicalJson(record))}`;
}

/** The published components and architectures of each suite, from its Release. */
export async function aptSuites(specs: readonly VmAptSpec[]): Promise<VmAptSuite[]> {
    const out: VmAptSuite[] = [];
    for (const [i, apt] of specs.entries()) {
        const state = await readAptSuite(`apt[${i}]`, apt, false);
        out.push({
            ...apt,
            components: [...state.release!.components],
            architectures: [...state.release!.architectures],
        });
    }
    return out;
}

/** Hard-links `from` to `to` when that keeps the content as is (same device, world-readable), else copies it (mode 0644/0755). */
async function placeFile(from: string, to: string): Promise<void> {
    const info = await fsp.stat(from);
    const readable = (info.mode & 0o444) === 0o444;
    if (readable) {
        try {
            await fsp.link(from, to);
            return;
        } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw err;
        }
    }
    await fsp.copyFile(from, to, fs.constants.COPYFILE_FICLONE);
    await fsp.chmod(to, info.mode & 0o111 ? 0o755 : 0o644);
    // The source's modification time, as a link would have it: the same tree gives the same image.
    await fsp.utimes(to, info.atime, info.mtime);
}

/**
 * Gives the staged directories, and the files under `ownDirs` (written by the build itself, never
 * links to a source), one fixed modification time: the same content then gives the same image.
 */
export async function fixStagedTimes(tree: string, ownDirs: readonly string[], seconds: number): Promise<void> {
    const visit = async (dir: string, own: boolean): Promise<void> => {
        for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
            const full = path.join(dir, e.name);
            const mine = own || (dir === tree && ownDirs.includes(e.name));
            if (e.isDirectory()) {
                await visit(full, mine);
            } else if (mine && e.isFile()) {
                await fsp.utimes(full, seconds, seconds);
            }
        }
        await fsp.utimes(dir, seconds, seconds);
    };
    await visit(tree, false);
}

export interface StageOptions {
    log?: (line: string) => void;
    signal?: AbortSignal;
}

/**
 * Stages the APT trees, files and git repositories under `tree` (`apt/`, `files/`, `git/`); the
 * registry storage and service configurations are written by the caller. Every pool file is
 * checked against its index while staged: a missing or altered file fails the build, naming it.
 */
export async function stageContent(spec: VmContentSpec, tree: string, options: StageOptions = {}): Promise<void> {
    const log = options.log ?? (() => {});
    for (const dir of ["apt", "files", "git"]) await fsp.mkdir(path.join(tree, dir), { recursive: true });
    for (const [i, apt] of spec.apt.entries()) {
        const argument = `apt[${i}]`;
        const state = await readAptSuite(argument, apt, false);
        const prefix = apt.prefix.replace(/\/+$/, "");
        const repo = path.join(tree, "apt", prefix);
        log(`apt ${prefix}/dists/${apt.distribution}: ${state.packages.length} packages`);
        const dists = path.join(repo, "dists", apt.distribution);
        await fsp.cp(await fsp.realpath(distLink(state.repoDir, apt.distribution)), dists, {
            recursive: true,
            dereference: true,
            preserveTimestamps: true,
        });
        for (const file of poolFilesOf(state)) {
            options.signal?.throwIfAborted();
            const to = path.join(repo, file.filename);
            if (fs.existsSync(to)) continue; // a pool file shared by two suites of one prefix
            await fsp.mkdir(path.dirname(to), { recursive: true });
            const from = path.join(state.repoDir, file.filename);
            await placeFile(from, to).catch((err) => {
                throw new AirgapError(
                    "ERR_NOT_FOUND",
                    `${argument}: ${file.filename} is listed in the published indexes but cannot be read: ${errText(err)}`,
                    { argument, cause: err },
                );
            });
            const sum = await sha256OfFile(to);
            if (sum !== file.sha256) {
                throw new AirgapError(
                    "ERR_VERIFICATION",
                    `${argument}: ${file.filename} has SHA256 ${sum}, its index says ${file.sha256}; sync the AptMirror again`,
                    { argument },
                );
            }
        }
        if (apt.publicKey) {
            await fsp.writeFile(path.join(repo, `${apt.distribution}.asc`), apt.publicKey, { mode: 0o644 });
        }
    }
    for (const [i, f] of spec.files.entries()) {
        const served = checkServedPath(`files[${i}].path`, f.path);
        const list = await walkFiles(`files[${i}].source`, f.source);
        log(`files ${served}: ${list.length} files`);
        for (const file of list) {
            options.signal?.throwIfAborted();
            const to = path.join(tree, "files", served, file.rel);
            await fsp.mkdir(path.dirname(to), { recursive: true });
            await placeFile(path.join(f.source, file.rel), to);
        }
    }
    for (const [i, g] of spec.git.entries()) {
        const served = checkServedPath(`git[${i}].path`, g.path);
        const to = path.join(tree, "git", served);
        await fsp.mkdir(path.dirname(to), { recursive: true });
        const dir = await gitDir(`git[${i}].source`, g.source);
        log(`git ${served}`);
        try {
            // Copies, not links: the build sets the times of what it staged, never of the source's objects.
            await run("git", ["-c", "safe.directory=*", "clone", "--quiet", "--mirror", "--no-hardlinks", dir, to]);
            // The "dumb" HTTP protocol: plain files any web server serves.
            await run("git", ["-c", "safe.directory=*", "--git-dir", to, "update-server-info"]);
        } catch (err) {
            throw invalidArgument(`git[${i}].source`, `cannot copy "${g.source}": ${errText(err)}`, err);
        }
    }
}

/** Every pool file of a published suite (binary packages, and the Sources and installer files when published). */
function poolFilesOf(state: Awaited<ReturnType<typeof readAptSuite>>): { filename: string; sha256: string }[] {
    return [...state.packages, ...(state.otherPoolFiles ?? [])].map((p) => ({
        filename: p.filename,
        sha256: p.sha256,
    }));
}
