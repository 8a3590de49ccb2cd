/**
 * Debian control files (deb822): `Packages` indexes, `Release` headers, the dpkg status file.
 *
 * A file is a sequence of stanzas separated by one or more blank lines (a line holding only
 * spaces and tabs counts as blank). A stanza is a sequence of fields:
 *
 *     Name: first line of the value
 *      continuation line (leading space or tab)
 *      .                 (an empty line of a multiline value)
 *
 * Lines starting with `#` in the first column are comments (deb822(5)) and are skipped wherever
 * they appear; a `#` anywhere else is data, so ` #...` continues a value. deb822 allows comments
 * only in some files (`debian/control`, deb822 sources), but no field name may start with `#`, so
 * skipping them everywhere cannot misread a valid file.
 *
 * Parsed values follow `Stanza.get`'s contract: lines joined by "\n", the one leading space or
 * tab of each continuation line removed, a continuation line of exactly "." read as an empty
 * line, trailing white space trimmed from every line. A field whose first line is empty (the
 * `SHA256:` of a `Release` file) starts with "\n". `Stanza.raw` keeps the stanza's lines as
 * read from its first field to its last line of value (comments in between included), with
 * line ends normalized to "\n" and no final line end.
 *
 * One file for one format: the deb822 tokenizer, stanza parser and writer, and the record built
 * from a stanza share the line and field rules they must agree on.
 */

import { AirgapError, invalidArgument, parseError } from "../errors";
import type { PackageRecord, Stanza } from "./types";
import { parseVersion } from "./version";

/**
 * A stanza kept as its text: a field is found and its value built when asked for. An index of
 * 20,000 stanzas held as maps of field values took about three times the memory of its text
 * (a string per value, a map and an order array per stanza); this holds one string per stanza.
 * `StanzaReader` has checked every line before one is made, so the text is well formed here.
 */
class TextStanza implements Stanza {
    constructor(readonly raw: string) {}

    get(field: string): string | undefined {
        const raw = this.raw;
        const n = raw.length;
        let start = 0;
        while (start < n) {
            let end = raw.indexOf("\n", start);
            if (end < 0) {
                end = n;
            }
            if (raw.charCodeAt(start + field.length) === 0x3a && sameName(raw, start, field)) {
                return valueFrom(raw, start + field.length + 1, end);
            }
            start = end + 1;
        }
        return undefined;
    }

    get order(): readonly string[] {
        return this.entries().map(([name]) => name);
    }

    entries(): [string, string][] {
        const raw = this.raw;
        const out: [string, string][] = [];
        let start = 0;
        while (start < raw.length) {
            let end = raw.indexOf("\n", start);
            if (end < 0) {
                end = raw.length;
            }
            const first = raw.charCodeAt(start);
            if (first !== 0x20 && first !== 0x09 && first !== 0x23) {
                const colon = raw.indexOf(":", start);
                out.push([fieldName(raw.slice(start, colon))[0], valueFrom(raw, colon + 1, end)]);
            }
            start = end + 1;
        }
        return out;
    }
}

/** Whether `raw` holds the field name `field` at `at`, ASCII letters compared without case. */
function sameName(raw: string, at: number, field: string): boolean {
    for (let k = 0; k < field.length; k++) {
        const a = raw.charCodeAt(at + k);
        const b = field.charCodeAt(k);
        if (a !== b) {
            const lower = a | 0x20;
            if (lower !== (b | 0x20) || lower < 0x61 || lower > 0x7a) {
                return false;
            }
        }
    }
    return true;
}

/**
 * The value of the field whose line ends at `end` and whose value starts at `from` (just after
 * the colon), with its continuation lines (comment lines between them skipped), as
 * `Stanza.get` promises.
 */
function valueFrom(raw: string, from: number, end: number): string {
    let start = from;
    while (start < end && (raw.charCodeAt(start) === 0x20 || raw.charCodeAt(start) === 0x09)) {
        start++;
    }
    let value = trimEnd(raw.slice(start, end));
    let next = end + 1;
    while (next < raw.length) {
        const c = raw.charCodeAt(next);
        if (c !== 0x20 && c !== 0x09 && c !== 0x23) {
            break;
        }
        let lineEnd = raw.indexOf("\n", next);
        if (lineEnd < 0) {
            lineEnd = raw.length;
        }
        if (c !== 0x23) {
            const text = trimEnd(raw.slice(next + 1, lineEnd));
            value += text === "." ? "\n" : `\n${text}`;
        }
        next = lineEnd + 1;
    }
    return value;
}

function isBlankLine(line: string): boolean {
    for (let i = 0; i < line.length; i++) {
        const c = line.charCodeAt(i);
        if (c !== 0x20 && c !== 0x09) {
            return false;
        }
    }
    return true;
}

function trimEnd(line: string): string {
    let end = line.length;
    while (end > 0) {
        const c = line.charCodeAt(end - 1);
        if (c !== 0x20 && c !== 0x09) {
            break;
        }
        end--;
    }
    return end === line.length ? line : line.slice(0, end);
}

/**
 * Field names and their lower-case keys, one string each however many stanzas name them: an
 * index of 20,000 stanzas otherwise holds two fresh strings per field and stanza (about 600,000).
 * Bounded, so that an index with endless distinct field names cannot grow it.
 */
const fieldNames = new Map<string, readonly [string, string]>();
const FIELD_NAMES_MAX = 4096;

function fieldName(name: string): readonly [string, string] {
    const known = fieldNames.get(name);
    if (known !== undefined) {
        return known;
    }
    const pair = [name, name.toLowerCase()] as const;
    if (fieldNames.size < FIELD_NAMES_MAX) {
        fieldNames.set(name, pair);
    }
    return pair;
}

/**
 * Accumulates lines into stanzas. Holds only the stanza being read, so a caller that feeds a
 * file line by line keeps memory flat whatever the number of stanzas.
 *
 * Given the whole `source` text, it takes `raw` as one slice of it instead of joining lines.
 */
class StanzaReader {
    /** Lower-case names of the stanza's fields so far, to refuse one given twice. */
    private keys: string[] = [];
    /** Streaming: lines of the stanza so far, and how many end with a field or continuation line. */
    private lines: string[] = [];
    private contentLines = 0;
    /** With a source text: where the stanza's first and last non-comment lines start and end. */
    private rawStart = -1;
    private rawEnd = -1;
    /** Number of lines read so far, for error messages. */
    private lineNumber = 0;

    constructor(private readonly source?: string) {}

    /**
     * Feeds one line (without its "\n"; a trailing "\r" is removed). `offset` is where the line
     * starts in the source text, when there is one.
     */
    push(input: string, offset = -1): Stanza | undefined {
        this.lineNumber++;
        const line = input.length > 0 && input.charCodeAt(input.length - 1) === 0x0d ? input.slice(0, -1) : input;
        if (isBlankLine(line)) {
            return this.finish();
        }
        const first = line.charCodeAt(0);
        if (first === 0x23) {
            if (this.source === undefined && this.keys.length > 0) {
                this.lines.push(line);
            }
            return undefined;
        }
        if (first === 0x20 || first === 0x09) {
            if (this.keys.length === 0) {
                throw parseError(this.lineNumber, `continuation line without a field: ${JSON.stringify(line)}`);
            }
            this.addRaw(line, offset);
            return undefined;
        }
        const colon = line.indexOf(":");
        if (colon <= 0) {
            throw parseError(this.lineNumber, `expected "Field: value", got ${JSON.stringify(line)}`);
        }
        const [name, key] = fieldName(line.slice(0, colon));
        if (first === 0x2d || name.indexOf(" ") >= 0 || name.indexOf("\t") >= 0) {
            throw parseError(this.lineNumber, `invalid field name ${JSON.stringify(name)}`);
        }
        if (this.keys.includes(key)) {
            throw parseError(this.lineNumber, `duplicate field ${JSON.stringify(name)}`);
        }
        this.keys.push(key);
        this.addRaw(line, offset);
        return undefined;
    }

    /** Ends the current stanza (at a blank line or the end of input); undefined when empty. */
    finish(): Stanza | undefined {
        if (this.keys.length === 0) {
            this.lines = [];
            return undefined;
        }
        let raw: string;
        if (this.source !== undefined) {
            raw = this.source.slice(this.rawStart, this.rawEnd);
            if (raw.indexOf("\r") >= 0) {
                raw = raw.replace(/\r\n/g, "\n");
            }
        } else {
            // Comment lines after the last field belong to no stanza.
            const lines = this.contentLines === this.lines.length ? this.lines : this.lines.slice(0, this.contentLines);
            raw = lines.join("\n");
        }
        this.lines = [];
        this.contentLines = 0;
        this.rawStart = -1;
        this.keys = [];
        return new TextStanza(raw);
    }

    private addRaw(line: string, offset: number): void {
        if (this.source === undefined) {
            this.lines.push(line);
            this.contentLines = this.lines.length;
        } else {
            if (this.rawStart < 0) {
                this.rawStart = offset;
            }
            this.rawEnd = offset + line.length;
        }
    }
}

/**
 * Parses every stanza of a control file. Accepts LF or CRLF line ends and a missing final
 * newline; throws an `ERR_PARSE` AirgapError (with the line number) on a malformed line or a
 * field repeated within a stanza.
 */
export function parseStanzas(text: string): Stanza[] {
    return [...eachStanza(text)];
}

/**
 * `parseStanzas`, one stanza at a time: a caller that only looks at each stanza once (the pool
 * files a published index names) holds one stanza, not all of them.
 */
export function* eachStanza(text: string): Generator<Stanza> {
    const reader = new StanzaReader(text);
    let start = 0;
    const n = text.length;
    while (start < n) {
        let end = text.indexOf("\n", start);
        if (end < 0) {
            end = n;
        }
        const stanza = reader.push(text.slice(start, end), start);
        if (stanza !== undefined) {
            yield stanza;
        }
        start = end + 1;
    }
    const last = reader.finish();
    if (last !== undefined) {
        yield last;
    }
}

/**
 * Streaming `parseStanzas`: reads lines (each item one line, with or without its "\n" or
 * "\r\n") and yields each stanza as soon as it is complete. Only the stanza being read is held,
 * so memory does not grow with the size of the file. Feed it from `splitLines` when the source
 * produces arbitrary chunks.
 */
export async function* parseStanzasFrom(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<Stanza> {
    const reader = new StanzaReader();
    for await (const item of lines) {
        const line = item.length > 0 && item.charCodeAt(item.length - 1) === 0x0a ? item.slice(0, -1) : item;
        const stanza = reader.push(line);
        if (stanza !== undefined) {
            yield stanza;
        }
    }
    const last = reader.finish();
    if (last !== undefined) {
        yield last;
    }
}

/**
 * Splits a stream of text or UTF-8 byte chunks (e.g. a decompressed HTTP body) into lines
 * without their "\n". A multi-byte character split across chunks is decoded correctly; invalid
 * UTF-8 becomes U+FFFD (checksums are verified on the bytes, not on this text).
 */
export async function* splitLines(
    chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
): AsyncGenerator<string> {
    const decoder = new TextDecoder("utf-8");
    let pending = "";
    for await (const chunk of chunks) {
        const text = typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
        let start = 0;
        for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n", start)) {
            yield pending + text.slice(start, end);
            pending = "";
            start = end + 1;
        }
        pending += text.slice(start);
    }
    pending += decoder.decode();
    if (pending.length > 0) {
        yield pending;
    }
}

function fieldError(pkg: string | undefined, field: string, problem: string): AirgapError {
    const who = pkg === undefined ? "package record" : `package ${JSON.stringify(pkg)}`;
    return new AirgapError("ERR_PARSE", `${who}: field ${field} ${problem}`);
}

function required(stanza: Stanza, pkg: string | undefined, field: string): string {
    const value = stanza.get(field);
    if (value === undefined || value === "") {
        throw fieldError(pkg, field, "is missing");
    }
    if (value.indexOf("\n") >= 0) {
        throw fieldError(pkg, field, `must be a single line, got ${JSON.stringify(value)}`);
    }
    return value;
}

/** dpkg's package name rule (`pkg_name_is_illegal`): an alphanumeric, then alphanumerics or `-+._`. */
const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+.\-_]*$/;
const ARCHITECTURE = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const SIZE = /^[0-9]+$/;
const SOURCE = /^([A-Za-z0-9][A-Za-z0-9+.\-_]*)(?:\s*\(\s*([^()\s]+)\s*\))?$/;

/**
 * Reasons a repository-relative path must not be used to write a file, or undefined when it is
 * safe: relative, `/`-separated, no empty, `.` or `..` segment, no backslash or control
 * character. A hostile index could otherwise make the mirror write outside its pool.
 */
export function unsafePathReason(path: string): string | undefined {
    if (path === "") {
        return "is empty";
    }
    if (path.startsWith("/")) {
        return "is absolute";
    }
    for (let i = 0; i < path.length; i++) {
        const c = path.charCodeAt(i);
        if (c === 0) {
            return "contains a NUL character";
        }
        if (c < 0x20 || c === 0x7f) {
            return "contains a control character";
        }
        if (c === 0x5c) {
            return "contains a backslash";
        }
    }
    for (const segment of path.split("/")) {
        if (segment === "..") {
            return 'contains a ".." segment';
        }
        if (segment === "." || segment === "") {
            return "contains an empty or '.' segment";
        }
    }
    return undefined;
}

/**
 * Checks a `Packages` stanza and extracts what the engine needs. Throws an `ERR_PARSE`
 * AirgapError naming the package and the field when a required field (Package, Version,
 * Architecture, Filename, Size, SHA256) is missing or malformed, or when `Filename` could lead
 * outside the repository (see `unsafePathReason`).
 */
export function toPackageRecord(stanza: Stanza, component: string): PackageRecord {
    const rawName = stanza.get("Package");
    const name = required(stanza, rawName, "Package");
    if (!PACKAGE_NAME.test(name)) {
        throw fieldError(name, "Package", "is not a valid package name");
    }
    const version = required(stanza, name, "Version");
    try {
        parseVersion(version);
    } catch (cause) {
        throw new AirgapError(
            "ERR_PARSE",
            `package ${JSON.stringify(name)}: field Version ${(cause as Error).message}`,
            {
                cause,
            },
        );
    }
    const architecture = required(stanza, name, "Architecture");
    if (!ARCHITECTURE.test(architecture)) {
        throw fieldError(name, "Architecture", `is not an architecture name: ${JSON.stringify(architecture)}`);
    }
    const filename = required(stanza, name, "Filename");
    const unsafe = unsafePathReason(filename);
    if (unsafe !== undefined) {
        throw fieldError(name, "Filename", `${JSON.stringify(filename)} ${unsafe}; refusing a path outside the pool`);
    }
    const sizeText = required(stanza, name, "Size");
    const size = Number(sizeText);
    if (!SIZE.test(sizeText) || !Number.isSafeInteger(size)) {
        throw fieldError(name, "Size", `is not a byte count: ${JSON.stringify(sizeText)}`);
    }
    const sha256 = required(stanza, name, "SHA256");
    if (!SHA256_HEX.test(sha256)) {
        throw fieldError(name, "SHA256", `is not 64 hexadecimal digits: ${JSON.stringify(sha256)}`);
    }
    let source = name;
    let sourceVersion = version;
    const sourceField = stanza.get("Source");
    if (sourceField !== undefined && sourceField !== "") {
        const parsed = parseSourceField(sourceField);
        if (parsed === undefined) {
            throw fieldError(name, "Source", `is not "name" or "name (version)": ${JSON.stringify(sourceField)}`);
        }
        source = parsed.name;
        if (parsed.version !== undefined) {
            sourceVersion = parsed.version;
        }
    }
    return {
        name,
        version,
        architecture,
        component,
        filename,
        size,
        sha256: sha256.toLowerCase(),
        source,
        sourceVersion,
        stanza,
    };
}

/**
 * Parses a binary package's `Source` field: `src` or `src (1.2-1)`. Returns undefined when the
 * text has neither shape or the version is one dpkg refuses.
 */
export function parseSourceField(field: string): { name: string; version?: string } | undefined {
    const match = SOURCE.exec(field.trim());
    if (match === null) {
        return undefined;
    }
    if (match[2] === undefined) {
        return { name: match[1] };
    }
    try {
        parseVersion(match[2]);
    } catch {
        return undefined;
    }
    return { name: match[1], version: match[2] };
}

const FIELD_NAME = /^[!-9;-~]+$/;

/**
 * Writes one stanza in deb822 form, each line ending with "\n" and no blank separator line
 * (join stanzas with "\n"). Multiline values are continued with a leading space; empty or
 * blank lines inside a value are written as " .". Field names must be printable ASCII without
 * `:` and must not start with `#` or `-`; values must not contain "\r".
 */
export function formatStanza(fields: readonly (readonly [string, string])[]): string {
    let out = "";
    fields.forEach(([name, value], i) => {
        if (!FIELD_NAME.test(name) || name.startsWith("#") || name.startsWith("-")) {
            throw invalidArgument(`fields[${i}]`, `${JSON.stringify(name)} is not a valid field name`);
        }
        if (value.indexOf("\r") >= 0) {
            throw invalidArgument(`fields[${i}]`, `the value of ${name} contains a carriage return`);
        }
        const lines = value.split("\n");
        out += lines[0].trim() === "" ? `${name}:\n` : `${name}: ${lines[0]}\n`;
        for (let j = 1; j < lines.length; j++) {
            out += isBlankLine(lines[j]) ? " .\n" : ` ${lines[j]}\n`;
        }
    });
    return out;
}
