/**
 * `Contents-<arch>.gz` indexes (`contents: true`): for every file a package installs, the line
 * `path<spaces>section/package[,section/package...]`, sorted by path, the format apt-file reads.
 *
 * Built streaming, so memory does not grow with the number of packages:
 *
 *   1. each `.deb` is read one at a time: its `ar` members are walked to `data.tar.*`, which is
 *      decompressed and its tar headers parsed as they stream by (file contents are skipped);
 *      one line `path \t arch \t section/name` per file goes to a temporary file per component;
 *   2. `sort` (GNU coreutils, `LC_ALL=C`, bounded buffer, its own temporary files) orders it;
 *   3. one pass over the sorted lines groups equal paths and writes each architecture's gzip
 *      stream (packages of architecture `all` go into every one).
 */

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { AirgapError } from "../errors";
import { decompress } from "../http/decompress";
import type { PublishPlan } from "./publish_plan";

/** A package whose files go into the Contents indexes. */
export interface ContentsPackage {
    /** The local `.deb`. */
    readonly file: string;
    readonly name: string;
    readonly architecture: string;
    readonly component: string;
    /** The `Section` field ("utils", "contrib/net"); "unknown" when absent. */
    readonly section?: string;
}

/** A written Contents index. */
export interface ContentsFile {
    /** Where it is now (in `workDir`). */
    readonly file: string;
    readonly size: number;
    readonly sha256: string;
    /**
     * Size and SHA256 of the uncompressed index. Not written (as in Debian's archive), but listed
     * in the Release: apt fetches an index target only when the Release lists its plain name.
     */
    readonly plain: { readonly size: number; readonly sha256: string };
}

export interface BuildContentsOptions {
    /** Read once each, in order. */
    readonly packages: Iterable<ContentsPackage>;
    readonly components: readonly string[];
    readonly architectures: readonly string[];
    /** A directory for the temporary and the resulting files (created). */
    readonly workDir: string;
    /** `sort`'s buffer (its `-S`). Defaults to "64M". */
    readonly sortBuffer?: string;
}

/**
 * Writes `<component>/Contents-<arch>.gz` for every component and architecture. Returns them by
 * path relative to the suite directory. A package that is not a readable `.deb` is ERR_PARSE
 * naming it.
 */
export async function buildContents(options: BuildContentsOptions): Promise<Map<string, ContentsFile>> {
    await fsp.mkdir(options.workDir, { recursive: true });
    const unsorted = new Map<string, { file: string; out: fs.WriteStream }>();
    for (const component of options.components) {
        const file = path.join(options.workDir, `${component.replace(/\//g, "_")}.lines`);
        unsorted.set(component, { file, out: fs.createWriteStream(file) });
    }
    try {
        for (const pkg of options.packages) {
            const target = unsorted.get(pkg.component);
            if (target === undefined) {
                continue;
            }
            const owner = `${pkg.section || "unknown"}/${pkg.name}`;
            for await (const name of debFileNames(pkg.file)) {
                if (!target.out.write(`${name}\t${pkg.architecture}\t${owner}\n`)) {
                    await once(target.out, "drain");
                }
            }
        }
    } finally {
        for (const { out } of unsorted.values()) {
            out.end();
            await once(out, "close");
        }
    }
    const result = new Map<string, ContentsFile>();
    for (const [component, { file }] of unsorted) {
        const sorted = `${file}.sorted`;
        await sortFile(file, sorted, options.workDir, options.sortBuffer ?? "64M");
        await fsp.rm(file, { force: true });
        const written = await writeIndexes(sorted, component, options.architectures, options.workDir);
        await fsp.rm(sorted, { force: true });
        for (const [rel, f] of written) {
            result.set(rel, f);
        }
    }
    return result;
}

/** `sort` in the C locale with a bounded buffer: an external merge sort. */
async function sortFile(input: string, output: string, tmp: string, buffer: string): Promise<void> {
    const child = spawn("sort", ["-S", buffer, "-T", tmp, "-o", output, input], {
        env: { ...process.env, LC_ALL: "C" },
        stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
    });
    const [code] = (await once(child, "close")) as [number | null];
    if (code !== 0) {
        throw new AirgapError("ERR_IO", `sorting the Contents lines failed (${code}): ${stderr.trim()}`);
    }
}

/** One pass over sorted `path \t arch \t owner` lines: a gzip stream per architecture. */
async function writeIndexes(
    sorted: string,
    component: string,
    architectures: readonly string[],
    workDir: string,
): Promise<Map<string, ContentsFile>> {
    const outputs = architectures.map((arch) => {
        const rel = `${component}/Contents-${arch}.gz`;
        const file = path.join(workDir, `${component.replace(/\//g, "_")}-Contents-${arch}.gz`);
        const gzip = createGzip({ level: 9 });
        const hash = createHash("sha256");
        const plainHash = createHash("sha256");
        let plainSize = 0;
        let size = 0;
        gzip.on("data", (chunk: Buffer) => {
            hash.update(chunk);
            size += chunk.length;
        });
        const sink = fs.createWriteStream(file);
        const done = pipeline(gzip, sink);
        const text = (line: string) => {
            plainHash.update(line);
            plainSize += Buffer.byteLength(line);
            return gzip.write(line);
        };
        return { arch, rel, file, gzip, hash, done, size: () => size, text, plainHash, plainSize: () => plainSize };
    });

    let current: string | undefined;
    let owners = new Map<string, string[]>(); // arch → owners of `current`
    const flush = async () => {
        if (current === undefined) {
            return;
        }
        const all = owners.get("all") ?? [];
        for (const o of outputs) {
            const list = [...(owners.get(o.arch) ?? []), ...all];
            if (list.length > 0) {
                const unique = [...new Set(list)].sort();
                if (!o.text(`${current.padEnd(60)} ${unique.join(",")}\n`)) {
                    await once(o.gzip, "drain");
                }
            }
        }
    };
    const lines = readline.createInterface({ input: fs.createReadStream(sorted), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
        const first = line.indexOf("\t");
        const second = line.indexOf("\t", first + 1);
        if (first < 0 || second < 0) {
            continue;
        }
        const name = line.slice(0, first);
        if (name !== current) {
            await flush();
            current = name;
            owners = new Map();
        }
        const arch = line.slice(first + 1, second);
        const list = owners.get(arch) ?? [];
        list.push(line.slice(second + 1));
        owners.set(arch, list);
    }
    await flush();
    const out = new Map<string, ContentsFile>();
    for (const o of outputs) {
        o.gzip.end();
        await o.done;
        out.set(o.rel, {
            file: o.file,
            size: o.size(),
            sha256: o.hash.digest("hex"),
            plain: { size: o.plainSize(), sha256: o.plainHash.digest("hex") },
        });
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Reading a .deb's file list

/** The paths of the files (not directories) a `.deb` installs, without the leading "./". */
export async function* debFileNames(deb: string): AsyncGenerator<string> {
    const data = await dataMember(deb);
    const raw = fs.createReadStream(deb, { start: data.offset, end: data.offset + data.size - 1 });
    let stream: Readable;
    let child: ReturnType<typeof spawn> | undefined;
    if (data.compression === "gz") {
        stream = raw.pipe(createGunzip());
        raw.on("error", (err) => stream.destroy(err));
    } else if (data.compression === "xz") {
        stream = decompress(raw, "xz");
    } else if (data.compression === "none") {
        stream = raw;
    } else {
        // zstd and bzip2 (rare) through the system's tools.
        child = spawn(data.compression === "zst" ? "zstd" : "bzip2", ["-dc"], { stdio: ["pipe", "pipe", "ignore"] });
        raw.pipe(child.stdin as Writable);
        stream = child.stdout as Readable;
    }
    try {
        yield* tarNames(stream, deb);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${deb}: cannot read its data.tar: ${(cause as Error).message}`, { cause });
    } finally {
        stream.destroy();
        raw.destroy();
        child?.kill();
    }
}

/** Where `data.tar.*` is in an `ar` archive. */
async function dataMember(deb: string): Promise<{ offset: number; size: number; compression: string }> {
    const handle = await fsp.open(deb, "r");
    try {
        const magic = Buffer.alloc(8);
        await handle.read(magic, 0, 8, 0);
        if (magic.toString("latin1") !== "!<arch>\n") {
            throw new AirgapError("ERR_PARSE", `${deb}: not a Debian package (no ar header)`);
        }
        const header = Buffer.alloc(60);
        for (let offset = 8; ; ) {
            const { bytesRead } = await handle.read(header, 0, 60, offset);
            if (bytesRead < 60) {
                throw new AirgapError("ERR_PARSE", `${deb}: no data.tar member`);
            }
            const name = header.toString("latin1", 0, 16).trim().replace(/\/$/, "");
            const size = Number.parseInt(header.toString("latin1", 48, 58).trim(), 10);
            if (!Number.isSafeInteger(size) || size < 0) {
                throw new AirgapError("ERR_PARSE", `${deb}: bad ar member size`);
            }
            if (name.startsWith("data.tar")) {
                const ext = name.slice("data.tar".length).replace(/^\./, "");
                const compression = ext === "" ? "none" : ext;
                if (!["gz", "xz", "zst", "bz2", "none"].includes(compression)) {
                    throw new AirgapError("ERR_PARSE", `${deb}: ${name} is in a compression not handled here`);
                }
                return { offset: offset + 60, size, compression };
            }
            offset += 60 + size + (size % 2);
        }
    } finally {
        await handle.close();
    }
}

/** Names of the non-directory entries of a tar stream (ustar, GNU long names, pax `path`). */
async function* tarNames(stream: AsyncIterable<Buffer>, what: string): AsyncGenerator<string> {
    let buffer: Buffer = Buffer.alloc(0);
    let skip = 0; // bytes of entry data still to pass over
    let pending: { kind: "longname" | "pax"; size: number } | undefined;
    let nextName: string | undefined;
    for await (const chunk of stream) {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
            if (skip > 0) {
                const n = Math.min(skip, buffer.length);
                buffer = buffer.subarray(n);
                skip -= n;
                if (skip > 0) {
                    break;
                }
            }
            if (pending !== undefined) {
                const padded = Math.ceil(pending.size / 512) * 512;
                if (buffer.length < padded) {
                    break;
                }
                const body = buffer.subarray(0, pending.size);
                nextName = pending.kind === "longname" ? cString(body) : (paxPath(body) ?? nextName);
                buffer = buffer.subarray(padded);
                pending = undefined;
                continue;
            }
            if (buffer.length < 512) {
                break;
            }
            const header = buffer.subarray(0, 512);
            buffer = buffer.subarray(512);
            if (header.every((b) => b === 0)) {
                continue;
            }
            const size = octal(header.subarray(124, 136), what);
            const type = String.fromCharCode(header[156] || 0x30);
            if (type === "L" || type === "x") {
                pending = { kind: type === "L" ? "longname" : "pax", size };
                continue;
            }
            let name = nextName;
            nextName = undefined;
            if (name === undefined) {
                const base = cString(header.subarray(0, 100));
                const prefix =
                    header.toString("latin1", 257, 262) === "ustar" ? cString(header.subarray(345, 500)) : "";
                name = prefix === "" ? base : `${prefix}/${base}`;
            }
            skip = type === "0" || type === "7" || type === "\0" ? Math.ceil(size / 512) * 512 : 0;
            if (type === "g") {
                skip = Math.ceil(size / 512) * 512;
                continue;
            }
            const clean = name.replace(/^\.?\/+/, "").replace(/^\.\//, "");
            if (type !== "5" && clean !== "" && !clean.endsWith("/") && !/[\t\n\r]/.test(clean)) {
                yield clean;
            }
        }
    }
}

function cString(bytes: Buffer): string {
    const end = bytes.indexOf(0);
    return bytes.toString("utf8", 0, end < 0 ? bytes.length : end);
}

function paxPath(body: Buffer): string | undefined {
    let at = 0;
    let found: string | undefined;
    while (at < body.length) {
        const space = body.indexOf(0x20, at);
        const length = Number.parseInt(body.toString("latin1", at, space), 10);
        if (space < 0 || !Number.isSafeInteger(length) || length <= 0) {
            break;
        }
        const record = body.toString("utf8", space + 1, at + length - 1);
        if (record.startsWith("path=")) {
            found = record.slice(5);
        }
        at += length;
    }
    return found;
}

function octal(field: Buffer, what: string): number {
    if ((field[0] & 0x80) !== 0) {
        // base-256 (GNU) for sizes of 8 GiB and more
        let n = 0;
        for (let i = 1; i < field.length; i++) {
            n = n * 256 + field[i];
        }
        return n;
    }
    const text = cString(field).trim();
    const n = text === "" ? 0 : Number.parseInt(text, 8);
    if (!Number.isSafeInteger(n) || n < 0) {
        throw new AirgapError("ERR_PARSE", `${what}: a tar header has a bad size`);
    }
    return n;
}

/** The binary packages of a publish, as placed in its pool (udebs have Contents of their own: left out). */
export function* contentsPackagesOf(plan: PublishPlan): Generator<ContentsPackage> {
    for (const target of [...plan.byPool.keys()].sort()) {
        const pkg = plan.byPool.get(target)!;
        if (pkg.udeb === true) {
            continue;
        }
        yield {
            file: path.join(plan.repoDir, target),
            name: pkg.record.name,
            architecture: pkg.record.architecture,
            component: pkg.record.component,
            section: pkg.record.stanza.get("Section"),
        };
    }
}
