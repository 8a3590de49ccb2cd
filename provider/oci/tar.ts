/**
 * The small part of the tar format an OCI archive needs (POSIX ustar, with pax extended headers
 * for long names and large sizes), read and written as streams.
 *
 * Reading handles regular files, directories, pax (`x`, `g`) and GNU long-name (`L`) headers,
 * base-256 sizes, and stops at the end-of-archive zero blocks. Other entry types (links, devices)
 * are refused: an image layout archive has none, and following them could escape the target.
 */

import { AirgapError } from "../errors";

const BLOCK = 512;
const OCTAL_SIZE_MAX = 0o77777777777;

export interface TarEntry {
    /** Path inside the archive, "/"-separated, without a leading "./". */
    readonly name: string;
    readonly type: "file" | "directory";
    readonly size: number;
}

/** Reads exact byte counts from an async iterable of chunks. */
class ChunkReader {
    private buffered: Buffer = Buffer.alloc(0);
    private done = false;
    private readonly iterator: AsyncIterator<Buffer | string>;

    constructor(source: AsyncIterable<Buffer | string>) {
        this.iterator = source[Symbol.asyncIterator]();
    }

    private async fill(): Promise<boolean> {
        if (this.done) {
            return false;
        }
        const next = await this.iterator.next();
        if (next.done) {
            this.done = true;
            return false;
        }
        const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
        this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
        return true;
    }

    /** Exactly `n` bytes, or fewer only at the end of the input. */
    async read(n: number): Promise<Buffer> {
        while (this.buffered.length < n && (await this.fill())) {
            // keep filling
        }
        const out = this.buffered.subarray(0, n);
        this.buffered = this.buffered.subarray(out.length);
        return out;
    }

    /** Yields the next `n` bytes in chunks; throws `onShort` when the input ends first. */
    async *take(n: number, onShort: () => Error): AsyncGenerator<Buffer> {
        let left = n;
        while (left > 0) {
            if (this.buffered.length === 0 && !(await this.fill())) {
                throw onShort();
            }
            const out = this.buffered.subarray(0, Math.min(left, this.buffered.length));
            this.buffered = this.buffered.subarray(out.length);
            left -= out.length;
            yield out;
        }
    }

    async close(): Promise<void> {
        if (!this.done) {
            this.done = true;
            await this.iterator.return?.();
        }
    }
}

function field(header: Buffer, offset: number, length: number): string {
    const raw = header.subarray(offset, offset + length);
    const nul = raw.indexOf(0);
    return raw.subarray(0, nul < 0 ? raw.length : nul).toString("utf8");
}

function numeric(header: Buffer, offset: number, length: number): number {
    const raw = header.subarray(offset, offset + length);
    if ((raw[0]! & 0x80) !== 0) {
        // base-256: big-endian two's complement with the top bit as the marker.
        let value = raw[0]! & 0x7f;
        for (let i = 1; i < raw.length; i++) {
            value = value * 256 + raw[i]!;
        }
        return value;
    }
    const text = raw
        .toString("latin1")
        .replace(/[\0 ]+$/, "")
        .trim();
    return text === "" ? 0 : Number.parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
    const stored = numeric(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) {
        sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    }
    return sum === stored;
}

function parsePax(data: Buffer, where: string): Record<string, string> {
    const out: Record<string, string> = {};
    let pos = 0;
    while (pos < data.length) {
        const space = data.indexOf(0x20, pos);
        const length = space < 0 ? Number.NaN : Number.parseInt(data.subarray(pos, space).toString("latin1"), 10);
        if (!Number.isSafeInteger(length) || length <= 0 || pos + length > data.length) {
            throw new AirgapError("ERR_PARSE", `${where}: malformed pax header`);
        }
        const record = data.subarray(space + 1, pos + length - 1).toString("utf8");
        const eq = record.indexOf("=");
        if (eq > 0) {
            out[record.slice(0, eq)] = record.slice(eq + 1);
        }
        pos += length;
    }
    return out;
}

function cleanName(name: string): string {
    let n = name;
    while (n.startsWith("./")) {
        n = n.slice(2);
    }
    return n.replace(/\/+$/, "");
}

/**
 * Reads a tar stream, calling `onEntry` for each file and directory in order. `onEntry` gets the
 * entry's bytes as an async iterable and MUST consume all of it before returning (or throw).
 * `where` names the archive in errors: ERR_PARSE "... is not a tar archive" when the first header
 * is not one, "... is truncated" when the data ends early.
 */
export async function readTar(
    source: AsyncIterable<Buffer | string>,
    where: string,
    onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
    const reader = new ChunkReader(source);
    const truncated = (inside?: string): AirgapError =>
        new AirgapError(
            "ERR_PARSE",
            `${where} is truncated${inside === undefined ? "" : ` (it ends inside "${inside}")`}`,
        );
    let first = true;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    try {
        while (true) {
            const header = await reader.read(BLOCK);
            if (header.length === 0 && first) {
                throw new AirgapError("ERR_PARSE", `${where} is not a tar archive: it is empty`);
            }
            if (header.length < BLOCK) {
                if (first) {
                    throw new AirgapError("ERR_PARSE", `${where} is not a tar archive`);
                }
                throw truncated();
            }
            if (header.every((b) => b === 0)) {
                // End of archive (two zero blocks; a missing second one is tolerated).
                if (first) {
                    throw new AirgapError("ERR_PARSE", `${where} is not a tar archive: it starts with a zero block`);
                }
                return;
            }
            if (!checksumOk(header)) {
                throw new AirgapError(
                    "ERR_PARSE",
                    first ? `${where} is not a tar archive` : `${where}: corrupt tar header (bad checksum)`,
                );
            }
            first = false;
            const type = String.fromCharCode(header[156]!);
            // Only POSIX ustar has a name prefix there; old GNU headers keep access times in those bytes.
            const posix = header.subarray(257, 263).toString("latin1") === "ustar\0";
            const prefix = posix ? field(header, 345, 155) : "";
            const headerName = prefix === "" ? field(header, 0, 100) : `${prefix}/${field(header, 0, 100)}`;
            const name = cleanName(pax["path"] ?? longName ?? headerName);
            const size = pax["size"] !== undefined ? Number(pax["size"]) : numeric(header, 124, 12);
            if (!Number.isSafeInteger(size) || size < 0) {
                throw new AirgapError("ERR_PARSE", `${where}: invalid size for "${name}"`);
            }
            const padding = (BLOCK - (size % BLOCK)) % BLOCK;
            const skipPadding = async (): Promise<void> => {
                if ((await reader.read(padding)).length < padding) {
                    throw truncated(name);
                }
            };
            const collect = async (): Promise<Buffer> => {
                const parts: Buffer[] = [];
                for await (const chunk of reader.take(size, () => truncated(name))) {
                    parts.push(chunk);
                }
                await skipPadding();
                return Buffer.concat(parts);
            };
            if (type === "x" || type === "g" || type === "L") {
                const data = await collect();
                if (type === "x") {
                    pax = parsePax(data, where);
                } else if (type === "L") {
                    longName = data.toString("utf8").replace(/\0+$/, "");
                }
                continue;
            }
            pax = {};
            longName = undefined;
            if (type === "0" || type === "\0" || type === "7") {
                const body = reader.take(size, () => truncated(name));
                await onEntry({ name, type: "file", size }, body);
                // Drain whatever the callback left, so the next header is in place.
                for await (const _ of body) {
                    // discard
                }
                await skipPadding();
            } else if (type === "5") {
                await collect();
                await onEntry({ name, type: "directory", size: 0 }, (async function* () {})());
            } else {
                throw new AirgapError(
                    "ERR_PARSE",
                    `${where}: entry "${name}" has tar type "${type}"; an image archive holds only files and directories`,
                );
            }
        }
    } finally {
        await reader.close();
    }
}

function writeString(header: Buffer, value: string, offset: number, length: number): void {
    header.write(value, offset, length, "utf8");
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
    header.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "latin1");
}

function paxRecord(key: string, value: string): string {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (`${length}${body}`.length !== length) {
        length = Buffer.byteLength(`${length}${body}`);
    }
    return `${length}${body}`;
}

function rawHeader(name: string, type: string, size: number, mode: number): Buffer {
    const header = Buffer.alloc(BLOCK);
    writeString(header, name, 0, 100);
    writeOctal(header, mode, 100, 8);
    writeOctal(header, 0, 108, 8);
    writeOctal(header, 0, 116, 8);
    writeOctal(header, size, 124, 12);
    writeOctal(header, 0, 136, 12);
    header.write(type, 156, 1, "latin1");
    header.write("ustar\0", 257, 6, "latin1");
    header.write("00", 263, 2, "latin1");
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) {
        sum += b;
    }
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
    return header;
}

/**
 * The header block(s) for an entry: a plain ustar header when the name fits in 100 bytes and the
 * size in 11 octal digits, otherwise a pax extended header first.
 */
export function tarHeader(entry: TarEntry): Buffer {
    const name = entry.type === "directory" ? `${entry.name}/` : entry.name;
    const type = entry.type === "directory" ? "5" : "0";
    const mode = entry.type === "directory" ? 0o755 : 0o644;
    const records: string[] = [];
    if (Buffer.byteLength(name) > 100) {
        records.push(paxRecord("path", name));
    }
    if (entry.size > OCTAL_SIZE_MAX) {
        records.push(paxRecord("size", String(entry.size)));
    }
    const main = rawHeader(
        records.length === 0 ? name : name.slice(0, 99),
        type,
        entry.size > OCTAL_SIZE_MAX ? 0 : entry.size,
        mode,
    );
    if (records.length === 0) {
        return main;
    }
    const data = Buffer.from(records.join(""), "utf8");
    return Buffer.concat([rawHeader("PaxHeader", "x", data.length, 0o644), data, tarPadding(data.length), main]);
}

/** Zero bytes that pad an entry of `size` bytes to a block boundary. */
export function tarPadding(size: number): Buffer {
    return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export function tarTrailer(): Buffer {
    return Buffer.alloc(2 * BLOCK);
}
