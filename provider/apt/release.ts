/**
 * `Release` / `InRelease` files: the signed table of contents of an APT suite.
 *
 * `extractClearsigned` splits an `InRelease` (an OpenPGP cleartext-signed message, RFC 4880
 * §7) into its text and its armored signature; checking the signature belongs to the verifier.
 * `parseRelease` reads the text; `lookupIndex` and `indexCandidates` answer what the fetcher
 * needs (the signed size and SHA256 of an index, which compressed variant to take, and its
 * by-hash location); `formatRelease` writes a `Release` for publishing, with checksum lines laid
 * out as `apt-ftparchive release` writes them.
 *
 * One file for one format: parsing, index lookup and formatting of a Release share its field and
 * checksum-line rules, which must round-trip.
 */

import { AirgapError, invalidArgument } from "../errors";
import { formatStanza, parseStanzas, unsafePathReason } from "./control";
import type { Stanza } from "./types";

/** One file listed in the checksum sections, with every hash given for it. */
export interface ReleaseFile {
    /** Path relative to the suite directory (`dists/<suite>/`), e.g. "main/binary-amd64/Packages.xz". */
    readonly path: string;
    readonly size: number;
    /**
     * Lower-case hex SHA256. Absent only when the file is listed solely under MD5Sum or SHA1,
     * which the engine MUST NOT accept as verification.
     */
    readonly sha256?: string;
    readonly sha1?: string;
    readonly md5?: string;
}

export interface Release {
    readonly origin?: string;
    readonly label?: string;
    readonly suite?: string;
    readonly codename?: string;
    readonly version?: string;
    readonly date?: Date;
    readonly validUntil?: Date;
    readonly architectures: readonly string[];
    readonly components: readonly string[];
    readonly description?: string;
    /** `Acquire-By-Hash: yes`: indexes can also be fetched under `<dir>/by-hash/SHA256/<hex>`. */
    readonly acquireByHash: boolean;
    readonly notAutomatic: boolean;
    readonly butAutomaticUpgrades: boolean;
    /** Files in the order of the SHA256 section, then any listed only under weaker hashes. */
    readonly files: readonly ReleaseFile[];
    /** The header stanza, for fields not parsed above. */
    readonly stanza: Stanza;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const DATE =
    /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s+(UTC|GMT|UT|Z|[+-]\d{4})$/;

/**
 * Parses the RFC 2822 dates of `Release` files (`Sat, 10 Aug 2024 09:50:42 UTC`,
 * `... +0000`). Returns undefined when the text is not such a date.
 */
export function parseReleaseDate(text: string): Date | undefined {
    const m = DATE.exec(text.trim());
    if (m === null) {
        return undefined;
    }
    const month = MONTHS.findIndex((name) => name.toLowerCase() === m[2].toLowerCase());
    if (month < 0) {
        return undefined;
    }
    const [day, year, hour, minute, second] = [m[1], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
    if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return undefined;
    }
    let offsetMinutes = 0;
    const zone = m[7];
    if (zone.startsWith("+") || zone.startsWith("-")) {
        const sign = zone.startsWith("-") ? -1 : 1;
        offsetMinutes = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
    }
    const utc = Date.UTC(year, month, day, hour, minute, second) - offsetMinutes * 60_000;
    const date = new Date(utc);
    // Date.UTC rolls 31 Feb over into March: refuse instead.
    if (new Date(Date.UTC(year, month, day)).getUTCDate() !== day) {
        return undefined;
    }
    return date;
}

/** Writes a date as Debian's archive does: `Sat, 10 Aug 2024 09:50:42 UTC`. */
export function formatReleaseDate(date: Date): string {
    const pad = (n: number) => String(n).padStart(2, "0");
    return (
        `${DAYS[date.getUTCDay()]}, ${pad(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
        `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} UTC`
    );
}

function releaseError(problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `Release file: ${problem}`);
}

type HashName = "md5" | "sha1" | "sha256";

const SECTIONS: readonly { field: string; hash: HashName; length: number }[] = [
    { field: "SHA256", hash: "sha256", length: 64 },
    { field: "SHA1", hash: "sha1", length: 40 },
    { field: "MD5Sum", hash: "md5", length: 32 },
];

const HEX = /^[0-9a-fA-F]+$/;

function words(value: string | undefined): string[] {
    return value === undefined ? [] : value.split(/\s+/).filter((w) => w !== "");
}

function optionalDate(stanza: Stanza, field: string): Date | undefined {
    const text = stanza.get(field);
    if (text === undefined) {
        return undefined;
    }
    const date = parseReleaseDate(text);
    if (date === undefined) {
        throw releaseError(`field ${field} is not an RFC 2822 date: ${JSON.stringify(text)}`);
    }
    return date;
}

function yes(stanza: Stanza, field: string): boolean {
    return stanza.get(field)?.toLowerCase() === "yes";
}

/**
 * Parses the text of a `Release` file (for an `InRelease`, the payload from
 * `extractClearsigned`). Throws an `ERR_PARSE` AirgapError on a malformed date or checksum line,
 * on a listed path that is absolute or climbs out of the suite, and when two sections disagree
 * on a file's size.
 */
export function parseRelease(text: string): Release {
    const stanzas = parseStanzas(text);
    if (stanzas.length !== 1) {
        throw releaseError(`expected one stanza, found ${stanzas.length}`);
    }
    const stanza = stanzas[0];
    const byPath = new Map<string, { path: string; size: number } & { [K in HashName]?: string }>();
    for (const section of SECTIONS) {
        const value = stanza.get(section.field);
        if (value === undefined) {
            continue;
        }
        for (const line of value.split("\n")) {
            if (line.trim() === "") {
                continue;
            }
            const parts = words(line);
            const [hash, sizeText, path] = parts;
            if (parts.length !== 3 || hash.length !== section.length || !HEX.test(hash) || !/^\d+$/.test(sizeText)) {
                throw releaseError(`malformed ${section.field} line ${JSON.stringify(line)}`);
            }
            const size = Number(sizeText);
            if (!Number.isSafeInteger(size)) {
                throw releaseError(`size out of range in ${section.field} line ${JSON.stringify(line)}`);
            }
            const unsafe = unsafePathReason(path);
            if (unsafe !== undefined) {
                throw releaseError(`path ${JSON.stringify(path)} in ${section.field} ${unsafe}`);
            }
            let entry = byPath.get(path);
            if (entry === undefined) {
                entry = { path, size };
                byPath.set(path, entry);
            } else if (entry.size !== size) {
                throw releaseError(`${path} is listed with sizes ${entry.size} and ${size}`);
            }
            const lower = hash.toLowerCase();
            const previous = entry[section.hash];
            if (previous !== undefined && previous !== lower) {
                throw releaseError(`${path} is listed twice in ${section.field} with different hashes`);
            }
            entry[section.hash] = lower;
        }
    }
    const release: { -readonly [K in keyof Release]: Release[K] } = {
        architectures: words(stanza.get("Architectures")),
        components: words(stanza.get("Components")),
        acquireByHash: yes(stanza, "Acquire-By-Hash"),
        notAutomatic: yes(stanza, "NotAutomatic"),
        butAutomaticUpgrades: yes(stanza, "ButAutomaticUpgrades"),
        files: [...byPath.values()],
        stanza,
    };
    for (const [key, field] of [
        ["origin", "Origin"],
        ["label", "Label"],
        ["suite", "Suite"],
        ["codename", "Codename"],
        ["version", "Version"],
        ["description", "Description"],
    ] as const) {
        const value = stanza.get(field);
        if (value !== undefined) {
            release[key] = value;
        }
    }
    const date = optionalDate(stanza, "Date");
    if (date !== undefined) {
        release.date = date;
    }
    const validUntil = optionalDate(stanza, "Valid-Until");
    if (validUntil !== undefined) {
        release.validUntil = validUntil;
    }
    return release;
}

const lookupCache = new WeakMap<Release, Map<string, ReleaseFile>>();

/** The entry for `path` (relative to the suite directory), or undefined when not listed. */
export function lookupIndex(release: Release, path: string): ReleaseFile | undefined {
    let map = lookupCache.get(release);
    if (map === undefined) {
        map = new Map(release.files.map((file) => [file.path, file]));
        lookupCache.set(release, map);
    }
    return map.get(path);
}

/** True when the Release carries a `Valid-Until` that is earlier than `now`. */
export function isReleaseExpired(release: Release, now: Date): boolean {
    return release.validUntil !== undefined && release.validUntil.getTime() < now.getTime();
}

export type Compression = "xz" | "gz" | "bz2" | "lzma" | "zst" | "none";

const EXTENSIONS: Readonly<Record<Compression, string>> = {
    xz: ".xz",
    gz: ".gz",
    bz2: ".bz2",
    lzma: ".lzma",
    zst: ".zst",
    none: "",
};

/** Default preference: smallest download first. */
export const DEFAULT_COMPRESSIONS: readonly Compression[] = ["xz", "gz", "none"];

/** A variant of an index that the Release offers, with what is needed to fetch and check it. */
export interface IndexCandidate {
    /** Path relative to the suite directory, e.g. "main/binary-amd64/Packages.xz". */
    readonly path: string;
    readonly compression: Compression;
    /** Size and lower-case hex SHA256 of the file as downloaded (compressed). */
    readonly size: number;
    readonly sha256: string;
    /** `main/binary-amd64/by-hash/SHA256/<hex>` when the Release says `Acquire-By-Hash: yes`. */
    readonly byHashPath?: string;
    /**
     * Size and SHA256 of the decompressed content, when the Release lists the uncompressed path
     * (Debian's archive does, without shipping the file): a second check after decompression.
     */
    readonly uncompressed?: { readonly size: number; readonly sha256: string };
}

export interface IndexCandidateOptions {
    /** Compressions to consider, most preferred first. Defaults to `DEFAULT_COMPRESSIONS`. */
    readonly compressions?: readonly Compression[];
}

/**
 * The variants of the index at `basePath` (e.g. "main/binary-amd64/Packages", without
 * extension) that the Release lists with a SHA256, in order of preference. Variants listed only
 * with weaker hashes are left out: they cannot be verified.
 */
export function indexCandidates(
    release: Release,
    basePath: string,
    options: IndexCandidateOptions = {},
): IndexCandidate[] {
    const compressions = options.compressions ?? DEFAULT_COMPRESSIONS;
    const slash = basePath.lastIndexOf("/");
    const dir = slash < 0 ? "" : basePath.slice(0, slash + 1);
    const plain = lookupIndex(release, basePath);
    const candidates: IndexCandidate[] = [];
    for (const compression of compressions) {
        const path = basePath + EXTENSIONS[compression];
        const file = lookupIndex(release, path);
        if (file?.sha256 === undefined) {
            continue;
        }
        const candidate: { -readonly [K in keyof IndexCandidate]: IndexCandidate[K] } = {
            path,
            compression,
            size: file.size,
            sha256: file.sha256,
        };
        if (release.acquireByHash) {
            candidate.byHashPath = `${dir}by-hash/SHA256/${file.sha256}`;
        }
        if (compression !== "none" && plain?.sha256 !== undefined) {
            candidate.uncompressed = { size: plain.size, sha256: plain.sha256 };
        }
        candidates.push(candidate);
    }
    return candidates;
}

/** `indexCandidates` for `<component>/binary-<architecture>/Packages`. */
export function packagesIndexCandidates(
    release: Release,
    component: string,
    architecture: string,
    options: IndexCandidateOptions = {},
): IndexCandidate[] {
    return indexCandidates(release, `${component}/binary-${architecture}/Packages`, options);
}

/** An `InRelease` taken apart. */
export interface Clearsigned {
    /**
     * The signed text with dash-escaping undone, lines joined by "\n". As RFC 4880 §7.1 says,
     * the line break before the signature is not part of it, so the text has no final "\n".
     */
    readonly payload: string;
    /** Values of the `Hash:` armor headers, e.g. ["SHA512"]; empty when there were none. */
    readonly hashes: readonly string[];
    /** The armored signature block, from `-----BEGIN PGP SIGNATURE-----` to its END line, with a final "\n". */
    readonly signature: string;
}

const BEGIN_MESSAGE = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE = "-----END PGP SIGNATURE-----";

function clearsignError(problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `InRelease is not a valid clearsigned message: ${problem}`);
}

/**
 * Splits a clearsigned message into payload and signature. Strict, because text that the
 * signature does not cover must never reach the parser (apt's InRelease signature bypass,
 * CVE-2016-1252): nothing but blank lines may come before the message or after the signature,
 * only `Hash` armor headers are accepted, and a line starting with "-----" inside the text is
 * refused (it could smuggle a second message). Throws an `ERR_PARSE` AirgapError.
 */
export function extractClearsigned(text: string): Clearsigned {
    const lines = text.split("\n").map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
    let i = 0;
    while (i < lines.length && lines[i].trim() === "") {
        i++;
    }
    if (i >= lines.length || lines[i].trimEnd() !== BEGIN_MESSAGE) {
        throw clearsignError(`expected ${BEGIN_MESSAGE} at the start`);
    }
    i++;
    const hashes: string[] = [];
    for (; i < lines.length && lines[i].trim() !== ""; i++) {
        const header = /^([A-Za-z][A-Za-z0-9-]*): ?(.*)$/.exec(lines[i]);
        if (header === null || header[1] !== "Hash") {
            throw clearsignError(`unexpected armor header ${JSON.stringify(lines[i])}`);
        }
        for (const name of header[2].split(",")) {
            if (name.trim() !== "") {
                hashes.push(name.trim());
            }
        }
    }
    if (i >= lines.length) {
        throw clearsignError("no blank line after the armor headers");
    }
    i++;
    const payload: string[] = [];
    for (; i < lines.length && lines[i].trimEnd() !== BEGIN_SIGNATURE; i++) {
        const line = lines[i];
        if (line.startsWith("- ")) {
            payload.push(line.slice(2));
        } else if (line.startsWith("-----")) {
            throw clearsignError(`unexpected armor line in the signed text: ${JSON.stringify(line)}`);
        } else {
            payload.push(line);
        }
    }
    if (i >= lines.length) {
        throw clearsignError(`no ${BEGIN_SIGNATURE} line`);
    }
    const start = i;
    for (; i < lines.length && lines[i].trimEnd() !== END_SIGNATURE; i++) {
        // The armored signature itself is checked by the verifier.
    }
    if (i >= lines.length) {
        throw clearsignError(`no ${END_SIGNATURE} line`);
    }
    const signature = `${lines
        .slice(start, i + 1)
        .map((line) => line.trimEnd())
        .join("\n")}\n`;
    for (i++; i < lines.length; i++) {
        if (lines[i].trim() !== "") {
            throw clearsignError(`data after the signature: ${JSON.stringify(lines[i])}`);
        }
    }
    return { payload: payload.join("\n"), hashes, signature };
}

/** What `formatRelease` writes. */
export interface ReleaseContent {
    readonly origin?: string;
    readonly label?: string;
    readonly suite?: string;
    readonly codename?: string;
    readonly version?: string;
    readonly date: Date;
    readonly validUntil?: Date;
    readonly architectures: readonly string[];
    readonly components: readonly string[];
    readonly description?: string;
    /** Writes `Acquire-By-Hash: yes`; the publisher must then also write the by-hash copies. Defaults to false. */
    readonly acquireByHash?: boolean;
    readonly notAutomatic?: boolean;
    readonly butAutomaticUpgrades?: boolean;
    /**
     * Files to list, sorted by path on output. Every file needs `sha256`; the MD5Sum and SHA1
     * sections are written only when every file has that hash.
     *
     * NOTE: apt fetches an index only when the Release lists its uncompressed path (apt 2.6
     * silently skips `main/binary-amd64/Packages` listed only as `.xz`/`.gz`). Publishers MUST
     * list the uncompressed path, with the decompressed size and hash, even when they do not
     * ship that file, as Debian's archive does.
     */
    readonly files: readonly ReleaseFile[];
}

function checksumSection(files: readonly ReleaseFile[], hash: HashName): string {
    // apt-ftparchive's layout: " <hex> <size right-aligned in 16 columns> <path>".
    return files
        .map((file) => `\n${file[hash]?.toLowerCase()} ${String(file.size).padStart(16)} ${file.path}`)
        .join("");
}

/**
 * Writes a `Release` file: header fields in the order Debian's archive uses, then the checksum
 * sections. Throws an `ERR_INVALID_ARGUMENT` AirgapError on a multi-line field, an unsafe or
 * duplicate path, a bad size or a hash that is not hex of the right length.
 */
export function formatRelease(content: ReleaseContent): string {
    const fields: [string, string][] = [];
    const single = (name: string, argument: string, value: string | undefined) => {
        if (value === undefined) {
            return;
        }
        if (value.indexOf("\n") >= 0 || value.indexOf("\r") >= 0 || value.trim() === "") {
            throw invalidArgument(argument, "must be one non-empty line");
        }
        fields.push([name, value]);
    };
    const list = (name: string, argument: string, values: readonly string[]) => {
        values.forEach((value, i) => {
            if (value === "" || /\s/.test(value)) {
                throw invalidArgument(`${argument}[${i}]`, "must be a non-empty word without white space");
            }
        });
        if (values.length > 0) {
            fields.push([name, values.join(" ")]);
        }
    };
    const date = (name: string, argument: string, value: Date | undefined) => {
        if (value === undefined) {
            return;
        }
        if (Number.isNaN(value.getTime())) {
            throw invalidArgument(argument, "is an invalid Date");
        }
        fields.push([name, formatReleaseDate(value)]);
    };
    single("Origin", "origin", content.origin);
    single("Label", "label", content.label);
    single("Suite", "suite", content.suite);
    single("Version", "version", content.version);
    single("Codename", "codename", content.codename);
    date("Date", "date", content.date);
    date("Valid-Until", "validUntil", content.validUntil);
    if (content.notAutomatic) {
        fields.push(["NotAutomatic", "yes"]);
    }
    if (content.butAutomaticUpgrades) {
        fields.push(["ButAutomaticUpgrades", "yes"]);
    }
    if (content.acquireByHash) {
        fields.push(["Acquire-By-Hash", "yes"]);
    }
    list("Architectures", "architectures", content.architectures);
    list("Components", "components", content.components);
    single("Description", "description", content.description);

    const files = [...content.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    files.forEach((file, i) => {
        const argument = `files[${content.files.indexOf(file)}]`;
        const unsafe = unsafePathReason(file.path);
        if (unsafe !== undefined || /\s/.test(file.path)) {
            throw invalidArgument(argument, `path ${JSON.stringify(file.path)} ${unsafe ?? "contains white space"}`);
        }
        if (i > 0 && files[i - 1].path === file.path) {
            throw invalidArgument(argument, `path ${JSON.stringify(file.path)} is listed twice`);
        }
        if (!Number.isSafeInteger(file.size) || file.size < 0) {
            throw invalidArgument(argument, `size ${file.size} is not a byte count`);
        }
        for (const section of SECTIONS) {
            const value = file[section.hash];
            if (value === undefined ? section.hash === "sha256" : value.length !== section.length || !HEX.test(value)) {
                throw invalidArgument(argument, `${section.field} must be ${section.length} hexadecimal digits`);
            }
        }
    });
    for (const section of [...SECTIONS].reverse()) {
        if (files.length > 0 && files.every((file) => file[section.hash] !== undefined)) {
            fields.push([section.field, checksumSection(files, section.hash)]);
        }
    }
    return formatStanza(fields);
}
