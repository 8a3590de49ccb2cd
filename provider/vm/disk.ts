/**
 * Disk images for the mirror VM, built from a staged directory tree by an unprivileged user, with
 * no running VM and no loop mounts:
 *
 *   tree ──makeExt4──▶ data.ext4 ─┐
 *   user-data … ──makeSeedIso──▶ seed.iso ─┤
 *                         base.qcow2 ─┴─assembleImage──▶ out.qcow2
 *
 * `makeExt4` and `makeSeedIso` are reproducible: the same inputs give the same bytes. Every
 * builder writes a temporary file beside its output and renames it into place, so a failed,
 * aborted or killed build leaves the previous output as it was.
 *
 * Tools: mke2fs, debugfs and dumpe2fs (e2fsprogs ≥ 1.47), qemu-img (qemu-utils), sfdisk (fdisk),
 * xorriso.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants, createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { AirgapError, invalidArgument } from "../errors";

const KiB = 1024;
const MiB = 1024 * KiB;
const SECTOR = 512;
const BLOCK = 4096;

/** Where progress lines go: one line at a time, no trailing newline. */
export type DiskLog = (line: string) => void;

// ─── sizes ──────────────────────────────────────────────────────────────────────────────────────

const UNITS: Record<string, number> = { "": 1, K: KiB, M: MiB, G: MiB * KiB, T: MiB * MiB, P: MiB * MiB * KiB };

/**
 * Parses a size: a whole number of bytes ("1073741824") or a number with a binary unit ("512M",
 * "200G", "1T", "1.5G", "64MiB", "10GB"; K, M, G, T and P are powers of 1024, as in qemu-img).
 * Anything else, zero, or a size that is not a whole number of bytes is refused naming `argument`.
 */
export function parseSize(argument: string, text: string): number {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGTP])(?:i?B)?|B)?\s*$/i.exec(String(text));
    if (m === null) {
        throw invalidArgument(
            argument,
            `"${text}" is not a size: write bytes ("1073741824") or a number with K, M, G, T or P ("512M", "200G")`,
        );
    }
    const bytes = Number(m[1]) * UNITS[(m[2] ?? "").toUpperCase()]!;
    if (!Number.isSafeInteger(bytes)) {
        throw invalidArgument(argument, `"${text}" is not a whole number of bytes below 8 PiB`);
    }
    if (bytes <= 0) {
        throw invalidArgument(argument, `"${text}" must be greater than zero`);
    }
    return bytes;
}

function roundUp(n: number, to: number): number {
    return Math.ceil(n / to) * to;
}

function mib(bytes: number): string {
    const m = bytes / MiB;
    return `${m >= 100 ? Math.round(m) : Math.round(m * 10) / 10} MiB`;
}

// ─── running tools ──────────────────────────────────────────────────────────────────────────────

const PACKAGE_OF: Record<string, string> = {
    mke2fs: "e2fsprogs",
    debugfs: "e2fsprogs",
    dumpe2fs: "e2fsprogs",
    "qemu-img": "qemu-utils",
    sfdisk: "fdisk",
    xorriso: "xorriso",
};

interface RunOptions {
    /** What the tool is doing, for the error message ("making the ext4 filesystem"). */
    what: string;
    signal?: AbortSignal;
    env?: Record<string, string>;
    /** Text, or lines produced on demand, written to the tool's stdin. */
    input?: string | Iterable<string>;
    /** Keep stdout (default true); false for tools that echo a lot. */
    stdout?: boolean;
}

/** Runs `tool` (no shell), resolving with its output; a non-zero exit rejects quoting its stderr. */
function run(tool: string, args: readonly string[], options: RunOptions): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(tool, args, {
            stdio: [
                options.input === undefined ? "ignore" : "pipe",
                options.stdout === false ? "ignore" : "pipe",
                "pipe",
            ],
            env: { ...process.env, LC_ALL: "C", ...options.env },
            signal: options.signal,
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout?.on("data", (c: Buffer) => out.push(c));
        child.stderr?.on("data", (c: Buffer) => err.push(c));
        let failed = false;
        child.on("error", (cause: NodeJS.ErrnoException) => {
            failed = true;
            if (cause.name === "AbortError") {
                reject(options.signal?.reason ?? cause);
            } else if (cause.code === "ENOENT") {
                reject(
                    new AirgapError(
                        "ERR_IO",
                        `${options.what}: ${tool} is not installed (install ${PACKAGE_OF[tool] ?? tool})`,
                        {
                            cause,
                        },
                    ),
                );
            } else {
                reject(new AirgapError("ERR_IO", `${options.what}: running ${tool}`, { cause }));
            }
        });
        child.on("close", (code, signal) => {
            if (failed) return;
            const stdout = Buffer.concat(out).toString();
            const stderr = Buffer.concat(err).toString();
            if (code === 0) {
                resolve({ stdout, stderr });
                return;
            }
            const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
            const said = stderr.trim() || stdout.trim();
            reject(new AirgapError("ERR_IO", `${options.what}: ${tool} ${how}${said === "" ? "" : `: ${said}`}`));
        });
        if (child.stdin !== null) {
            child.stdin.on("error", () => {
                // The tool stopped reading (it exited): its exit code and stderr tell why.
            });
            if (typeof options.input === "string") {
                child.stdin.end(options.input);
            } else if (options.input !== undefined) {
                void writeLines(child.stdin, options.input);
            }
        }
    });
}

/** Writes lines to a child's stdin in batches, waiting when its pipe is full. */
async function writeLines(stdin: NodeJS.WritableStream, lines: Iterable<string>): Promise<void> {
    let batch = "";
    for (const line of lines) {
        batch += `${line}\n`;
        if (batch.length >= 64 * KiB) {
            if (!stdin.write(batch)) {
                await new Promise<void>((resolve) => {
                    stdin.once("drain", resolve);
                    stdin.once("close", resolve);
                });
            }
            batch = "";
        }
    }
    stdin.end(batch);
}

// ─── files ──────────────────────────────────────────────────────────────────────────────────────

/** A temporary name beside `target` (same directory, so the final rename is atomic). */
function tempBeside(target: string): string {
    return `${target}.${randomBytes(6).toString("hex")}.tmp`;
}

/** Temporary files older than this, beside an output, were left by a killed build. */
const STALE_TEMP_MS = 15 * 60_000;

/**
 * Removes what a killed build (no chance to clean up) left beside `target`: files named like
 * `tempBeside(target)` makes them, not modified for `STALE_TEMP_MS` (a build still running keeps
 * writing its own).
 */
async function sweepStaleTemps(target: string, log: DiskLog): Promise<void> {
    const dir = path.dirname(path.resolve(target));
    const base = path.basename(target);
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
        if (!name.startsWith(`${base}.`) || !/^[0-9a-f]{12}\.tmp(\..*)?$/.test(name.slice(base.length + 1))) continue;
        const full = path.join(dir, name);
        const st = await fsp.lstat(full).catch(() => undefined);
        if (st === undefined || Date.now() - st.mtimeMs < STALE_TEMP_MS) continue;
        await fsp.rm(full, { recursive: true, force: true });
        log(`removed ${full}, left by a build that was killed`);
    }
}

/**
 * Checks that `file`'s directory exists and that files can be made in it (by making and removing
 * one), so a long build does not fail at its end.
 */
async function checkWritableDirectory(argument: string, file: string): Promise<void> {
    if (typeof file !== "string" || file === "") {
        throw invalidArgument(argument, "a file path is required");
    }
    const dir = path.dirname(path.resolve(file));
    let stat: Awaited<ReturnType<typeof fsp.stat>>;
    try {
        stat = await fsp.stat(dir);
    } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        throw invalidArgument(
            argument,
            code === "ENOENT"
                ? `directory ${dir} does not exist; create it first`
                : `directory ${dir} cannot be reached (${code})`,
            cause,
        );
    }
    if (!stat.isDirectory()) {
        throw invalidArgument(argument, `${dir} is not a directory`);
    }
    try {
        const existing = await fsp.stat(file);
        if (existing.isDirectory()) {
            throw invalidArgument(argument, `${file} is a directory; give a file path`);
        }
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const probe = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.probe`);
    try {
        await (await fsp.open(probe, "wx")).close();
    } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code ?? "error";
        throw invalidArgument(
            argument,
            `directory ${dir} is not writable (${code}); choose another place or fix its permissions`,
            cause,
        );
    }
    await fsp.rm(probe, { force: true });
}

async function existingFile(argument: string, file: string): Promise<number> {
    if (typeof file !== "string" || file === "") {
        throw invalidArgument(argument, "a file path is required");
    }
    let stat: Awaited<ReturnType<typeof fsp.stat>>;
    try {
        stat = await fsp.stat(file);
    } catch (cause) {
        throw invalidArgument(argument, `${file} does not exist`, cause);
    }
    if (!stat.isFile()) {
        throw invalidArgument(argument, `${file} is not a regular file`);
    }
    return stat.size;
}

/** Flushes a file (or a directory's entries) to the disk. */
async function sync(file: string): Promise<void> {
    const handle = await fsp.open(file, fsConstants.O_RDONLY);
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}

/** Syncs `tmp`, renames it over `target` and syncs the directory so the rename survives a crash. */
async function publish(tmp: string, target: string): Promise<void> {
    await sync(tmp);
    await fsp.rename(tmp, target);
    await sync(path.dirname(path.resolve(target)));
}

async function sha256Of(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) {
        hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
}

// ─── ext4 sizing ────────────────────────────────────────────────────────────────────────────────

/** What a tree walk finds, in 4 KiB ext4 blocks; the input of the pure size computation. */
export interface TreeStats {
    /** Distinct inodes (a hard-linked file counts once), the tree's root directory included. */
    inodes: number;
    /** Bytes of file contents (apparent sizes). */
    fileBytes: number;
    /** Data blocks of regular files (holes of sparse files not counted). */
    dataBlocks: number;
    /** Directory blocks. */
    dirBlocks: number;
    /** Extent tree blocks of big, fragmented or sparse files and directories. */
    extentBlocks: number;
    /** Blocks of symlinks whose target is too long to live in the inode (60 bytes or more). */
    symlinkBlocks: number;
}

/** Reads `tree` (without following symlinks) into the numbers `ext4SizeForStats` needs. */
export async function walkTree(tree: string): Promise<TreeStats> {
    let root: Awaited<ReturnType<typeof fsp.lstat>>;
    try {
        root = await fsp.lstat(tree);
    } catch (cause) {
        throw invalidArgument("tree", `${tree} does not exist`, cause);
    }
    if (!root.isDirectory()) {
        throw invalidArgument("tree", `${tree} is not a directory`);
    }
    const stats: TreeStats = {
        inodes: 0,
        fileBytes: 0,
        dataBlocks: 0,
        dirBlocks: 0,
        extentBlocks: 0,
        symlinkBlocks: 0,
    };
    const linked = new Set<string>();
    const pending = [tree];
    stats.inodes = 1;
    while (pending.length > 0) {
        const dir = pending.pop()!;
        let names: string[];
        try {
            names = await fsp.readdir(dir);
        } catch (cause) {
            throw invalidArgument("tree", `cannot read directory ${dir}`, cause);
        }
        // "." and ".." (12 bytes each), then 8 bytes + the name rounded up to 4 per entry.
        let entryBytes = 24;
        for (const name of names) {
            entryBytes += 8 + roundUp(Buffer.byteLength(name), 4);
            const full = path.join(dir, name);
            const st = await fsp.lstat(full);
            if (st.isDirectory()) {
                stats.inodes++;
                pending.push(full);
                continue;
            }
            if (!st.isSymbolicLink() && st.nlink > 1) {
                const key = `${st.dev}:${st.ino}`;
                if (linked.has(key)) continue;
                linked.add(key);
            }
            stats.inodes++;
            if (st.isSymbolicLink()) {
                if (st.size >= 60) stats.symlinkBlocks++;
            } else if (st.isFile()) {
                stats.fileBytes += st.size;
                const full4k = Math.ceil(st.size / BLOCK);
                // mke2fs copies holes as holes when the source file has some.
                const sparse = st.blocks * 512 < st.size;
                const blocks = sparse ? Math.min(full4k, Math.ceil((st.blocks * 512) / BLOCK) + 1) : full4k;
                stats.dataBlocks += blocks;
                // One extent covers at most 32768 blocks; block group metadata can split runs;
                // a sparse file can have one extent per data run. Four extents fit in the inode.
                const extents = sparse ? blocks : 2 * Math.ceil(blocks / 32768) + 1;
                if (extents > 4) stats.extentBlocks += Math.ceil(extents / 340) + 1;
            }
        }
        // Entries do not straddle blocks, each block ends with a 12-byte checksum tail; allow for
        // the waste of a full block per block plus an index block when the directory grows.
        const blocks = Math.ceil(entryBytes / (BLOCK - 12 - 264));
        stats.dirBlocks += blocks + (blocks > 1 ? 1 : 0);
        if (blocks > 4) stats.extentBlocks += Math.ceil(blocks / 340) + 1;
    }
    return stats;
}

/** The journal mke2fs makes for a filesystem of `blocks` 4 KiB blocks (ext2fs_default_journal_size). */
function journalBlocks(blocks: number): number {
    if (blocks < 32768) return 1024;
    if (blocks < 256 * 1024) return 4096;
    if (blocks < 512 * 1024) return 8192;
    if (blocks < 4096 * 1024) return 16384;
    if (blocks < 8192 * 1024) return 32768;
    if (blocks < 16384 * 1024) return 65536;
    if (blocks < 32768 * 1024) return 131072;
    return 262144;
}

/** Groups holding a superblock backup with sparse_super: 0, 1 and the powers of 3, 5 and 7. */
function backupGroups(groups: number): number {
    const set = new Set<number>([0, 1]);
    for (const base of [3, 5, 7]) {
        for (let g = base; g < groups; g *= base) set.add(g);
    }
    return [...set].filter((g) => g < groups).length;
}

/** Metadata blocks of an ext4 filesystem of `blocks` blocks and `inodes` inodes, as our mke2fs settings lay it out. */
function metadataBlocks(blocks: number, inodes: number): number {
    const groups = Math.ceil(blocks / 32768);
    const inodesPerGroup = roundUp(Math.ceil(inodes / groups), 16);
    const inodeTables = groups * ((inodesPerGroup * 256) / BLOCK);
    const bitmaps = 2 * groups;
    // 64-byte group descriptors, 64 to a block; the resize inode reserves descriptors for
    // 1024 times the size (at most 2^32 blocks), at most 1024 blocks.
    const gdt = Math.ceil(groups / 64);
    const maxGroups = Math.ceil(Math.min(2 ** 32 - 1, blocks * 1024) / 32768);
    const reservedGdt = Math.min(1024, Math.max(0, Math.ceil(maxGroups / 64) - gdt));
    const superblocks = backupGroups(groups) * (1 + gdt + reservedGdt);
    const journal = journalBlocks(blocks) + 2;
    // Resize inode's indirect block, lost+found (16 KiB), reserved inodes' blocks.
    const fixed = 1 + 4 + 8;
    return inodeTables + bitmaps + superblocks + journal + fixed;
}

/** The size computation of `ext4SizeFor`, pure. */
export function ext4SizeForStats(stats: TreeStats): {
    contentBytes: number;
    inodes: number;
    minimumBytes: number;
    fsBytes: number;
} {
    const inodes = Math.ceil(stats.inodes * 1.1) + 1024;
    const content = stats.dataBlocks + stats.dirBlocks + stats.extentBlocks + stats.symlinkBlocks;
    let blocks = content + 1024;
    for (;;) {
        const next = content + metadataBlocks(blocks, inodes);
        if (next <= blocks) break;
        blocks = next;
    }
    const minimumBytes = roundUp(blocks * BLOCK, MiB);
    return {
        contentBytes: content * BLOCK,
        inodes,
        minimumBytes,
        fsBytes: roundUp(minimumBytes * 1.1 + 64 * MiB, MiB),
    };
}

/**
 * Bytes an ext4 filesystem needs to hold `tree`: `contentBytes` (file data, directory, extent and
 * symlink blocks), `inodes` (what the tree uses plus 10 % + 1024), `minimumBytes` (that plus
 * inode tables, bitmaps, descriptors, superblock backups and journal) and `fsBytes` (10 % + 64 MiB
 * more, in whole MiB) — the size to give `makeExt4`.
 */
export async function ext4SizeFor(
    tree: string,
): Promise<{ contentBytes: number; inodes: number; minimumBytes: number; fsBytes: number }> {
    return ext4SizeForStats(await walkTree(tree));
}

// ─── ext4 ───────────────────────────────────────────────────────────────────────────────────────

/**
 * The mke2fs configuration used instead of the machine's /etc/mke2fs.conf, so that the same tree
 * gives the same filesystem on any machine. Features a 4.x guest kernel mounts.
 */
const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The default fixed time of builds: SOURCE_DATE_EPOCH when set, else 2000-01-01T00:00:00Z. */
export function defaultTimestamp(): number {
    const env = process.env["SOURCE_DATE_EPOCH"];
    const n = env === undefined ? Number.NaN : Number(env);
    return Number.isSafeInteger(n) && n > 0 ? n : 946684800;
}

export interface MakeExt4Options {
    /** The staged directory; its contents become the filesystem's root. It is only read. */
    tree: string;
    /** The raw filesystem image to write (replaced atomically). */
    out: string;
    /** Size of the image; a multiple of 4096 (see `ext4SizeFor`). */
    sizeBytes: number;
    /** Filesystem label, at most 16 bytes. */
    label: string;
    /** Filesystem UUID; also the directory hash seed. */
    uuid: string;
    /** Inodes to make. Defaults to what the tree needs plus 10 % + 1024, or one per 16 KiB if more. */
    inodes?: number;
    /** Owner of every file and directory. Defaults to root (0:0); the builder's own ids never leak in. */
    owner?: { uid: number; gid: number };
    /**
     * Seconds since 1970 used for the filesystem's own times and for every inode's ctime, atime and
     * crtime. Defaults to `defaultTimestamp()`. Modification times are the tree's own: an HTTP
     * server derives Last-Modified from them, and a fixed one would let clients keep stale indexes.
     */
    timestamp?: number;
    signal?: AbortSignal;
    log?: DiskLog;
}

/** Used inode numbers from `dumpe2fs` output: every group's range minus its "Free inodes" list. */
export function usedInodes(dumpe2fs: string): number[] {
    const perGroup = Number(/^Inodes per group:\s+(\d+)/m.exec(dumpe2fs)?.[1]);
    if (!Number.isSafeInteger(perGroup) || perGroup <= 0) {
        throw new AirgapError("ERR_PARSE", "dumpe2fs printed no 'Inodes per group'");
    }
    const used: number[] = [];
    let group = -1;
    for (const line of dumpe2fs.split("\n")) {
        const g = /^Group (\d+):/.exec(line);
        if (g !== null) {
            group = Number(g[1]);
            continue;
        }
        const f = /^\s+Free inodes:(.*)$/.exec(line);
        if (f === null || group < 0) continue;
        const first = group * perGroup + 1;
        const last = first + perGroup - 1;
        const free = f[1]!
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "")
            .map((s): [number, number] => {
                const [a, b] = s.split("-").map(Number);
                return [a!, b ?? a!];
            });
        let next = first;
        for (const [a, b] of [...free, [last + 1, last + 1] as [number, number]]) {
            for (let i = next; i < a; i++) used.push(i);
            next = b + 1;
        }
        group = -1;
    }
    return used;
}

/**
 * Makes an ext4 filesystem image of `sizeBytes` holding `tree` (mke2fs -d, no mount), with a fixed
 * label, UUID and hash seed, fixed times and a fixed owner, so two builds of the same tree (same
 * names, contents, modes and mtimes) give identical bytes. The tree is not modified. `out` is
 * written beside and renamed into place.
 */
export async function makeExt4(opts: MakeExt4Options): Promise<void> {
    const log = opts.log ?? (() => {});
    if (typeof opts.label !== "string" || Buffer.byteLength(opts.label) > 16) {
        throw invalidArgument("label", `"${opts.label}" is not an ext4 label: at most 16 bytes`);
    }
    if (typeof opts.uuid !== "string" || !UUID_RE.test(opts.uuid)) {
        throw invalidArgument("uuid", `"${opts.uuid}" is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
    }
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0 || opts.sizeBytes % BLOCK !== 0) {
        throw invalidArgument("sizeBytes", `${opts.sizeBytes} is not a positive multiple of ${BLOCK}`);
    }
    const owner = opts.owner ?? { uid: 0, gid: 0 };
    for (const [k, v] of Object.entries(owner)) {
        if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff)
            throw invalidArgument(`owner.${k}`, `${v} is not an id`);
    }
    const timestamp = opts.timestamp ?? defaultTimestamp();
    if (!Number.isSafeInteger(timestamp) || timestamp < 1 || timestamp >= 2 ** 34) {
        throw invalidArgument("timestamp", `${timestamp} is not a time in seconds after 1970`);
    }
    await checkWritableDirectory("output", opts.out);
    await sweepStaleTemps(opts.out, log);
    const stats = await walkTree(opts.tree);
    const need = ext4SizeForStats(stats);
    const inodes = opts.inodes ?? Math.max(need.inodes, Math.floor(opts.sizeBytes / (16 * KiB)));
    if (!Number.isSafeInteger(inodes) || inodes < stats.inodes + 11) {
        throw invalidArgument("inodes", `${inodes} is too few: the tree has ${stats.inodes} files and directories`);
    }
    if (opts.sizeBytes < need.minimumBytes) {
        throw invalidArgument(
            "sizeBytes",
            `${mib(opts.sizeBytes)} is too small for ${opts.tree}: it needs at least ${mib(need.minimumBytes)} (ext4SizeFor suggests ${mib(need.fsBytes)})`,
        );
    }

    const tmp = tempBeside(opts.out);
    const conf = `${tmp}.mke2fs.conf`;
    const env = { E2FSPROGS_FAKE_TIME: String(timestamp), SOURCE_DATE_EPOCH: String(timestamp), MKE2FS_CONFIG: conf };
    try {
        await fsp.writeFile(conf, MKE2FS_CONF, { flag: "wx" });
        // A fresh sparse file reads as zeros, which assume_storage_prezeroed relies on.
        const handle = await fsp.open(tmp, "wx", 0o644);
        try {
            await handle.truncate(opts.sizeBytes);
        } finally {
            await handle.close();
        }
        log(
            `making ext4 "${opts.label}" of ${mib(opts.sizeBytes)} from ${opts.tree} (${stats.inodes} inodes, ${mib(stats.fileBytes)} of files)`,
        );
        await run(
            "mke2fs",
            [
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                String(BLOCK),
                "-I",
                "256",
                "-N",
                String(inodes),
                "-m",
                "0",
                "-L",
                opts.label,
                "-U",
                opts.uuid.toLowerCase(),
                "-E",
                `hash_seed=${opts.uuid.toLowerCase()},root_owner=${owner.uid}:${owner.gid},assume_storage_prezeroed=1,nodiscard`,
                "-d",
                path.resolve(opts.tree),
                tmp,
            ],
            { what: `making the ext4 filesystem of ${opts.tree}`, env, signal: opts.signal },
        );
        // mke2fs copies each file's atime and ctime (and owner) from the tree: set them to fixed values.
        const { stdout } = await run("dumpe2fs", [tmp], {
            what: "listing the inodes of the new filesystem",
            env,
            signal: opts.signal,
        });
        const targets = usedInodes(stdout).filter((i) => i === 2 || i >= 11);
        const at = `@${timestamp}`;
        const commands = function* () {
            for (const i of targets) {
                yield `sif <${i}> atime ${at}`;
                yield `sif <${i}> ctime ${at}`;
                yield `sif <${i}> crtime ${at}`;
                yield `sif <${i}> uid ${owner.uid}`;
                yield `sif <${i}> gid ${owner.gid}`;
            }
        };
        const { stderr } = await run("debugfs", ["-w", "-f", "-", tmp], {
            what: "fixing the times and owners of the new filesystem",
            env,
            input: commands(),
            stdout: false,
            signal: opts.signal,
        });
        // debugfs exits 0 even when a command fails; its only other stderr line is its banner.
        const complaints = stderr.split("\n").filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l));
        if (complaints.length > 0) {
            throw new AirgapError(
                "ERR_IO",
                `fixing the times and owners of the new filesystem: debugfs: ${complaints.slice(0, 5).join("; ")}`,
            );
        }
        await publish(tmp, opts.out);
        log(`wrote ${opts.out}`);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    } finally {
        await fsp.rm(conf, { force: true });
    }
}

// ─── cloud-init seed ────────────────────────────────────────────────────────────────────────────

export interface MakeSeedIsoOptions {
    /** The ISO image to write (replaced atomically). */
    out: string;
    userData: string;
    metaData: string;
    networkConfig?: string;
    /** Seconds since 1970 for every date in the image. Defaults to `defaultTimestamp()`. */
    timestamp?: number;
}

/**
 * A cloud-init NoCloud seed: an ISO 9660 image (Rock Ridge and Joliet) labelled "cidata" holding
 * `user-data`, `meta-data` and, when given, `network-config`, all owned by root with mode 0644.
 * Reproducible: every date in it is `timestamp`.
 */
export async function makeSeedIso(opts: MakeSeedIsoOptions): Promise<void> {
    for (const key of ["userData", "metaData"] as const) {
        if (typeof opts[key] !== "string") throw invalidArgument(key, "text is required");
    }
    if (opts.networkConfig !== undefined && typeof opts.networkConfig !== "string") {
        throw invalidArgument("networkConfig", "must be text");
    }
    const timestamp = opts.timestamp ?? defaultTimestamp();
    if (!Number.isSafeInteger(timestamp) || timestamp < 1) {
        throw invalidArgument("timestamp", `${timestamp} is not a time in seconds after 1970`);
    }
    await checkWritableDirectory("output", opts.out);
    await sweepStaleTemps(opts.out, () => {});
    const tmp = tempBeside(opts.out);
    const staging = `${tmp}.d`;
    try {
        await fsp.mkdir(staging, { mode: 0o755 });
        await fsp.chmod(staging, 0o755);
        const files: [string, string][] = [
            ["user-data", opts.userData],
            ["meta-data", opts.metaData],
        ];
        if (opts.networkConfig !== undefined) files.push(["network-config", opts.networkConfig]);
        for (const [name, text] of files) {
            await fsp.writeFile(path.join(staging, name), text, { mode: 0o644 });
            await fsp.chmod(path.join(staging, name), 0o644);
        }
        const d = new Date(timestamp * 1000);
        const p2 = (n: number) => String(n).padStart(2, "0");
        const uuid = `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}00`;
        await run(
            "xorriso",
            [
                "-no_rc",
                "-report_about",
                "SORRY",
                "-abort_on",
                "FAILURE",
                "-outdev",
                `stdio:${path.resolve(tmp)}`,
                "-volid",
                "cidata",
                "-joliet",
                "on",
                "-rockridge",
                "on",
                "-volume_date",
                "uuid",
                uuid,
                "-volume_date",
                "all_file_dates",
                `=${timestamp}`,
                "-map",
                staging,
                "/",
                "-chown_r",
                "0",
                "/",
                "--",
                "-chgrp_r",
                "0",
                "/",
                "--",
                "-commit",
            ],
            { what: "making the cloud-init seed image", env: { SOURCE_DATE_EPOCH: String(timestamp) } },
        );
        await publish(tmp, opts.out);
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    } finally {
        await fsp.rm(staging, { recursive: true, force: true });
    }
}

// ─── images ─────────────────────────────────────────────────────────────────────────────────────

export interface ImageInfo {
    format: "qcow2" | "raw";
    virtualSize: number;
    actualSize: number;
}

/**
 * `qemu-img info` of `file`. A missing file, a directory, a file qemu-img cannot read, and any
 * format other than qcow2 or raw are refused naming `argument`.
 */
export async function inspectImage(argument: string, file: string): Promise<ImageInfo> {
    await existingFile(argument, file);
    let stdout: string;
    try {
        // -U: the image may be open in a VM; an absolute path is never read as a protocol ("nbd:").
        ({ stdout } = await run("qemu-img", ["info", "-U", "--output=json", path.resolve(file)], {
            what: `reading ${file}`,
        }));
    } catch (cause) {
        throw invalidArgument(
            argument,
            `${file} is not a disk image qemu-img can read: ${(cause as Error).message}`,
            cause,
        );
    }
    const info = JSON.parse(stdout) as { format?: string; "virtual-size"?: number; "actual-size"?: number };
    if (info.format !== "qcow2" && info.format !== "raw") {
        throw invalidArgument(
            argument,
            `${file} is a ${info.format} image; convert it to qcow2 or raw first (qemu-img convert -O qcow2)`,
        );
    }
    return { format: info.format, virtualSize: info["virtual-size"] ?? 0, actualSize: info["actual-size"] ?? 0 };
}

/** One partition table entry as `sfdisk -J` prints it (sectors). */
export interface PartitionEntry {
    node: string;
    start: number;
    size: number;
    type: string;
    uuid?: string;
    name?: string;
}

/** `sfdisk -J` of a raw disk image: its label ("gpt" or "dos"), disk id and partitions. */
export async function readPartitionTable(
    file: string,
    signal?: AbortSignal,
): Promise<{ label: string; id: string; sectorSize: number; partitions: PartitionEntry[] }> {
    const { stdout } = await run("sfdisk", ["-J", file], { what: `reading the partition table of ${file}`, signal });
    const table = (
        JSON.parse(stdout) as {
            partitiontable: { label: string; id: string; sectorsize?: number; partitions?: PartitionEntry[] };
        }
    ).partitiontable;
    return {
        label: table.label,
        id: table.id,
        sectorSize: table.sectorsize ?? SECTOR,
        partitions: table.partitions ?? [],
    };
}

/** A partition to append: a filesystem image and its GPT partition name. */
export interface PartitionSpec {
    /** A raw filesystem image (ext4 from `makeExt4`, ISO from `makeSeedIso`, ...). */
    file: string;
    /** GPT partition name (1–36 of A–Z a–z 0–9 . _ -). Ignored with a log line on an MBR disk. */
    name: string;
    /** sfdisk partition type (a GPT type GUID, an MBR hex code or an alias such as "L"). Defaults to Linux filesystem. */
    type?: string;
}

export interface AssembleImageOptions {
    /** The qcow2 to write; replaced atomically. */
    out: string;
    /** A directory for the raw intermediate (as big as the base plus the partitions, sparse). */
    workDir: string;
    /** A bootable qcow2 or raw disk with a GPT or MBR partition table. Named `baseImage` in errors. */
    base?: string;
    /** Without `base`, exactly one: the data filesystem; with it, the partitions to append, in order. */
    partitions: PartitionSpec[];
    /** qcow2 compression (smaller, slower to write and to read). Defaults to false. */
    compress?: boolean;
    signal?: AbortSignal;
    /** Progress lines. Defaults to stderr. */
    log?: DiskLog;
}

export interface AssembledImage {
    sha256: string;
    virtualSizeBytes: number;
    actualSizeBytes: number;
}

/** A partition GUID derived from the disk's GUID and the partition's index and name. */
function partitionUuid(diskId: string, index: number, name: string): string {
    const h = createHash("sha256").update(`${diskId.toLowerCase()}\0${index}\0${name}`).digest();
    h[6] = (h[6]! & 0x0f) | 0x40;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const x = h.subarray(0, 16).toString("hex").toUpperCase();
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * Copies `source` into `target` at `offset`. Zero chunks are skipped where the target already
 * reads as zeros, so a sparse source stays sparse; elsewhere (say, over a GPT backup left behind
 * by the base) zeros are written.
 */
async function writeAt(source: string, target: string, offset: number, signal?: AbortSignal): Promise<void> {
    const src = await fsp.open(source, "r");
    const dst = await fsp.open(target, "r+");
    try {
        const chunk = 4 * MiB;
        const buf = Buffer.alloc(chunk);
        const old = Buffer.alloc(chunk);
        for (let pos = 0; ; pos += chunk) {
            signal?.throwIfAborted();
            const { bytesRead } = await src.read(buf, 0, chunk, pos);
            if (bytesRead === 0) break;
            const data = buf.subarray(0, bytesRead);
            if (isZero(data)) {
                const { bytesRead: oldRead } = await dst.read(old, 0, bytesRead, offset + pos);
                if (isZero(old.subarray(0, oldRead))) continue;
            }
            await dst.write(data, 0, bytesRead, offset + pos);
        }
    } finally {
        await src.close();
        await dst.close();
    }
}

const ZEROS = Buffer.alloc(64 * KiB);
function isZero(b: Buffer): boolean {
    for (let i = 0; i < b.length; i += ZEROS.length) {
        const part = b.subarray(i, Math.min(b.length, i + ZEROS.length));
        if (!part.equals(ZEROS.subarray(0, part.length))) return false;
    }
    return true;
}

const NAME_RE = /^[A-Za-z0-9._-]{1,36}$/;
const TYPE_RE = /^[A-Za-z0-9-]{1,36}$/;

/**
 * Builds the image to upload. Without `base`: the one partition file (a data filesystem) as a
 * qcow2. With `base`: the base converted to raw in `workDir`, grown, the GPT backup header moved
 * to the new end, the partitions appended (`sfdisk --append`, 1 MiB aligned, GPT names and
 * GUIDs derived from the disk's GUID), each file written at its partition's offset, and the whole
 * converted to qcow2 (compressed if asked). The base's own partitions are not touched.
 *
 * The qcow2 is written to `<out>.<random>.tmp`, checked with `qemu-img check`, synced and renamed
 * over `out`: a failed or aborted build leaves a previous `out` as it was and no temporary file.
 */
export async function assembleImage(opts: AssembleImageOptions): Promise<AssembledImage> {
    const log = opts.log ?? ((line: string) => console.error(`[vm image ${opts.out}] ${line}`));
    const signal = opts.signal;
    await checkWritableDirectory("output", opts.out);
    let workStat: Awaited<ReturnType<typeof fsp.stat>> | undefined;
    try {
        workStat = await fsp.stat(opts.workDir);
    } catch {
        workStat = undefined;
    }
    if (workStat === undefined || !workStat.isDirectory()) {
        throw invalidArgument("workDir", `${opts.workDir} is not an existing directory`);
    }
    if (!Array.isArray(opts.partitions)) {
        throw invalidArgument("partitions", "a list of { file, name } is required");
    }
    const sizes: number[] = [];
    for (const [i, p] of opts.partitions.entries()) {
        sizes.push(await existingFile(`partitions[${i}].file`, p.file));
        if (typeof p.name !== "string" || !NAME_RE.test(p.name)) {
            throw invalidArgument(
                `partitions[${i}].name`,
                `"${p.name}" is not a partition name: 1 to 36 of A-Z a-z 0-9 . _ -`,
            );
        }
        if (p.type !== undefined && !TYPE_RE.test(p.type)) {
            throw invalidArgument(`partitions[${i}].type`, `"${p.type}" is not an sfdisk partition type`);
        }
    }
    if (opts.base === undefined && opts.partitions.length !== 1) {
        throw invalidArgument(
            "partitions",
            `without a base image the output is one data filesystem; ${opts.partitions.length} partitions were given`,
        );
    }
    if (opts.base !== undefined && opts.partitions.length === 0) {
        throw invalidArgument("partitions", "nothing to append to the base image");
    }
    signal?.throwIfAborted();
    await sweepStaleTemps(opts.out, log);

    const tmp = tempBeside(opts.out);
    const work = await fsp.mkdtemp(path.join(opts.workDir, "assemble-"));
    try {
        let raw: string;
        if (opts.base === undefined) {
            raw = opts.partitions[0]!.file;
            log(`data disk from ${raw} (${mib(sizes[0]!)})`);
        } else {
            raw = await appendPartitions(opts, sizes, work, log);
        }
        log(`converting to qcow2${opts.compress === true ? " (compressed)" : ""}`);
        await run(
            "qemu-img",
            [
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                ...(opts.compress === true ? ["-c"] : []),
                path.resolve(raw),
                path.resolve(tmp),
            ],
            {
                what: "converting the image to qcow2",
                signal,
            },
        );
        await run("qemu-img", ["check", "-f", "qcow2", path.resolve(tmp)], { what: "checking the new image", signal });
        const info = await inspectImage("output", tmp);
        if (info.format !== "qcow2") {
            throw new AirgapError("ERR_IO", `the new image ${tmp} reads as ${info.format}, not qcow2`);
        }
        const sha256 = await sha256Of(tmp);
        signal?.throwIfAborted();
        await publish(tmp, opts.out);
        log(`wrote ${opts.out}: ${mib(info.actualSize)} on disk, ${mib(info.virtualSize)} virtual, sha256 ${sha256}`);
        return { sha256, virtualSizeBytes: info.virtualSize, actualSizeBytes: info.actualSize };
    } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
    } finally {
        await fsp.rm(work, { recursive: true, force: true });
    }
}

/** The base as raw in `work`, grown, with `opts.partitions` appended and written. Returns its path. */
async function appendPartitions(
    opts: AssembleImageOptions,
    sizes: number[],
    work: string,
    log: DiskLog,
): Promise<string> {
    const signal = opts.signal;
    const base = opts.base!;
    const info = await inspectImage("baseImage", base);
    const raw = path.join(work, "disk.raw");
    log(`converting base ${base} (${info.format}, ${mib(info.virtualSize)}) to raw`);
    await run("qemu-img", ["convert", "-f", info.format, "-O", "raw", path.resolve(base), raw], {
        what: `converting the base image ${base} to raw`,
        signal,
    });
    let before: Awaited<ReturnType<typeof readPartitionTable>>;
    try {
        before = await readPartitionTable(raw, signal);
    } catch (cause) {
        signal?.throwIfAborted();
        throw invalidArgument(
            "baseImage",
            `${base} has no partition table (GPT or MBR); give a bootable disk image`,
            cause,
        );
    }
    if (before.label !== "gpt" && before.label !== "dos") {
        throw invalidArgument(
            "baseImage",
            `${base} has a ${before.label} partition table; only GPT and MBR are supported`,
        );
    }
    if (before.sectorSize !== SECTOR) {
        throw invalidArgument("baseImage", `${base} uses ${before.sectorSize}-byte sectors; only 512 is supported`);
    }
    if (before.partitions.length === 0) {
        throw invalidArgument("baseImage", `${base} has an empty partition table; give a bootable disk image`);
    }
    const gpt = before.label === "gpt";
    if (!gpt) {
        if (before.partitions.length + opts.partitions.length > 4) {
            throw invalidArgument(
                "baseImage",
                `${base} has an MBR table with ${before.partitions.length} partitions: ${opts.partitions.length} more do not fit in 4 primary ones`,
            );
        }
        log("the base has an MBR table: partition names are not kept");
    }

    // Room for every partition at 1 MiB alignment, plus 1 MiB for the GPT backup at the end.
    const baseBytes = roundUp(info.virtualSize, MiB);
    const total = baseBytes + sizes.reduce((sum, s) => sum + roundUp(s, MiB) + MiB, 0) + MiB;
    log(`growing the disk from ${mib(info.virtualSize)} to ${mib(total)}`);
    await fsp.truncate(raw, total);
    if (gpt) {
        await run("sfdisk", ["-q", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", raw], {
            what: "moving the GPT backup header to the end of the grown disk",
            signal,
        });
    }
    const script = opts.partitions
        .map((p, i) => {
            const sectors = roundUp(sizes[i]!, MiB) / SECTOR;
            const type = p.type ?? "L";
            return gpt
                ? `size=${sectors}, type=${type}, name="${p.name}", uuid=${partitionUuid(before.id, before.partitions.length + i + 1, p.name)}`
                : `size=${sectors}, type=${type}`;
        })
        .join("\n");
    await run("sfdisk", ["-q", "--no-reread", "--no-tell-kernel", "--wipe-partitions", "never", "--append", raw], {
        what: `appending partitions to ${base}`,
        input: `${script}\n`,
        signal,
    });
    const after = await readPartitionTable(raw, signal);
    const known = new Set(before.partitions.map((p) => p.start));
    const added = after.partitions.filter((p) => !known.has(p.start)).sort((a, b) => a.start - b.start);
    if (added.length !== opts.partitions.length) {
        throw new AirgapError(
            "ERR_IO",
            `appending partitions to ${base}: sfdisk made ${added.length}, not ${opts.partitions.length}`,
        );
    }
    for (const [i, p] of opts.partitions.entries()) {
        const part = added[i]!;
        if (part.size * SECTOR < sizes[i]!) {
            throw new AirgapError("ERR_IO", `partition ${part.node} is ${part.size} sectors, too small for ${p.file}`);
        }
        log(
            `writing ${p.file} (${mib(sizes[i]!)}) to partition ${after.partitions.indexOf(part) + 1} "${p.name}" at sector ${part.start}`,
        );
        await writeAt(p.file, raw, part.start * SECTOR, signal);
    }
    return raw;
}
