/**
 * Debian package versions: `[epoch:]upstream[-revision]`, parsed and ordered exactly as
 * `dpkg --compare-versions` does (dpkg `lib/dpkg/parsehelp.c` and `lib/dpkg/version.c`).
 *
 * Ordering of the upstream and revision parts, compared left to right in alternating runs of
 * non-digits and digits:
 * - in a non-digit run, `~` sorts before everything (even the end of the string), then the end
 *   of the string, then letters (ASCII order), then every other character (ASCII order + 256);
 * - a digit run compares as an unbounded non-negative integer (leading zeros ignored, no
 *   conversion to a JavaScript number, so long runs never overflow).
 *
 * `compareVersions` is on the resolver's hot path: its usual case walks both strings once with
 * `charCodeAt` and allocates nothing. Versions with surrounding blanks, non-ASCII characters or
 * unusual epochs take a slower path that follows dpkg byte by byte.
 */

import { AirgapError, invalidArgument } from "../errors";

/** A version split into its three parts. `revision` is "" when the version has no `-`. */
export interface ParsedVersion {
    readonly epoch: number;
    readonly upstream: string;
    readonly revision: string;
}

/** Relation operators. `<` and `>` are the obsolete spellings of `<=` and `>=`. */
export type VersionOp = "<<" | "<=" | "=" | ">=" | ">>" | "<" | ">";

/** dpkg keeps the epoch in a C `int`. */
const MAX_EPOCH = 2147483647;

interface SplitResult extends ParsedVersion {
    /** dpkg's warning for a version it accepts anyway (bad first character, invalid characters). */
    readonly warning?: string;
}

function parseError(version: string, problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `invalid version ${JSON.stringify(version)}: ${problem}`);
}

function isBlank(c: number): boolean {
    return c === 0x20 || c === 0x09;
}

/** C `isspace` in the C locale, as skipped by `strtol`. */
function isCSpace(c: number): boolean {
    return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function isDigit(c: number): boolean {
    return c >= 0x30 && c <= 0x39;
}

function isAlpha(c: number): boolean {
    return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * Follows dpkg's `parseversion`: errors throw, warnings are returned. dpkg itself compares
 * versions that only drew a warning, so callers that compare must accept them too.
 */
function splitVersion(input: string): SplitResult {
    if (input.indexOf("\0") >= 0) {
        throw parseError(input, "version contains a NUL character");
    }
    let start = 0;
    let end = input.length;
    while (start < end && isBlank(input.charCodeAt(start))) {
        start++;
    }
    if (start === end) {
        throw parseError(input, "version string is empty");
    }
    let stop = start;
    while (stop < end && !isBlank(input.charCodeAt(stop))) {
        stop++;
    }
    for (let i = stop; i < end; i++) {
        if (!isBlank(input.charCodeAt(i))) {
            throw parseError(input, "version string has embedded spaces");
        }
    }
    end = stop;

    let epoch = 0;
    const colon = input.indexOf(":", start);
    if (colon >= 0 && colon < end) {
        // Same acceptance as strtol(3): leading white space, an optional sign, then digits.
        let i = start;
        while (i < colon && isCSpace(input.charCodeAt(i))) {
            i++;
        }
        let negative = false;
        if (i < colon && (input[i] === "+" || input[i] === "-")) {
            negative = input[i] === "-";
            i++;
        }
        const digitsStart = i;
        let value = 0;
        while (i < colon && isDigit(input.charCodeAt(i))) {
            if (value <= MAX_EPOCH) {
                value = value * 10 + (input.charCodeAt(i) - 0x30);
            }
            i++;
        }
        if (i === digitsStart) {
            throw parseError(input, "epoch in version is empty");
        }
        if (i !== colon) {
            throw parseError(input, "epoch in version is not number");
        }
        if (negative && value !== 0) {
            throw parseError(input, "epoch in version is negative");
        }
        if (value > MAX_EPOCH) {
            throw parseError(input, "epoch in version is too big");
        }
        if (colon + 1 === end) {
            throw parseError(input, "nothing after colon in version number");
        }
        epoch = value;
        start = colon + 1;
    }

    const body = input.slice(start, end);
    const hyphen = body.lastIndexOf("-");
    let upstream = body;
    let revision = "";
    if (hyphen >= 0) {
        upstream = body.slice(0, hyphen);
        revision = body.slice(hyphen + 1);
        if (revision === "") {
            throw parseError(input, "revision number is empty");
        }
    }
    if (upstream === "") {
        throw parseError(input, "version number is empty");
    }

    let warning: string | undefined;
    if (!isDigit(upstream.charCodeAt(0))) {
        warning = "version number does not start with digit";
    } else {
        for (let i = 1; i < upstream.length; i++) {
            const c = upstream.charCodeAt(i);
            if (!isDigit(c) && !isAlpha(c) && ".-+~:".indexOf(upstream[i]) < 0) {
                warning = "invalid character in version number";
                break;
            }
        }
        if (warning === undefined) {
            for (let i = 0; i < revision.length; i++) {
                const c = revision.charCodeAt(i);
                if (!isDigit(c) && !isAlpha(c) && ".+~".indexOf(revision[i]) < 0) {
                    warning = "invalid character in revision number";
                    break;
                }
            }
        }
    }
    return warning === undefined ? { epoch, upstream, revision } : { epoch, upstream, revision, warning };
}

/**
 * Splits a version into epoch, upstream version and revision.
 *
 * Throws an `ERR_PARSE` AirgapError where dpkg reports an error (empty version, embedded
 * spaces, bad epoch, nothing after the colon, empty upstream version or revision). Versions that
 * dpkg accepts with a warning (not starting with a digit, unusual characters) are returned; see
 * `versionWarning`.
 */
export function parseVersion(version: string): ParsedVersion {
    const { epoch, upstream, revision } = splitVersion(version);
    return { epoch, upstream, revision };
}

/**
 * dpkg's warning for a version it accepts but that breaks Debian policy, or undefined when the
 * version is clean. Throws like `parseVersion` when the version is not accepted at all.
 */
export function versionWarning(version: string): string | undefined {
    return splitVersion(version).warning;
}

/** True when dpkg accepts the version without error or warning. */
export function isValidVersion(version: string): boolean {
    try {
        return splitVersion(version).warning === undefined;
    } catch {
        return false;
    }
}

/** Writes a parsed version back (`epoch:` only when the epoch is not 0). */
export function formatVersion(version: ParsedVersion): string {
    const epoch = version.epoch === 0 ? "" : `${version.epoch}:`;
    const revision = version.revision === "" ? "" : `-${version.revision}`;
    return `${epoch}${version.upstream}${revision}`;
}

/**
 * dpkg's `order()`. `c` is a byte (0..255) or -1 for the end of the string. Bytes from 0x80 up
 * take their own value, as with dpkg built where `char` is signed (amd64, i386).
 */
function order(c: number): number {
    if (c < 0) {
        return 0;
    }
    if (c >= 0x30 && c <= 0x39) {
        return 0;
    }
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) {
        return c;
    }
    if (c === 0x7e) {
        return -1;
    }
    return c >= 0x80 ? c : c + 256;
}

/** dpkg's `verrevcmp()` over `a[ai..ae)` and `b[bi..be)`, where every code unit is a byte. */
function verrevcmp(a: string, ai: number, ae: number, b: string, bi: number, be: number): number {
    while (ai < ae || bi < be) {
        let firstDiff = 0;
        for (;;) {
            const ac = ai < ae ? a.charCodeAt(ai) : -1;
            const bc = bi < be ? b.charCodeAt(bi) : -1;
            const aNonDigit = ac >= 0 && !(ac >= 0x30 && ac <= 0x39);
            const bNonDigit = bc >= 0 && !(bc >= 0x30 && bc <= 0x39);
            if (!aNonDigit && !bNonDigit) {
                break;
            }
            const ao = order(ac);
            const bo = order(bc);
            if (ao !== bo) {
                return ao < bo ? -1 : 1;
            }
            ai++;
            bi++;
        }
        while (ai < ae && a.charCodeAt(ai) === 0x30) {
            ai++;
        }
        while (bi < be && b.charCodeAt(bi) === 0x30) {
            bi++;
        }
        for (;;) {
            const ac = ai < ae ? a.charCodeAt(ai) : -1;
            const bc = bi < be ? b.charCodeAt(bi) : -1;
            const aDigit = ac >= 0x30 && ac <= 0x39;
            const bDigit = bc >= 0x30 && bc <= 0x39;
            if (aDigit && bDigit) {
                if (firstDiff === 0) {
                    firstDiff = ac - bc;
                }
                ai++;
                bi++;
                continue;
            }
            if (aDigit) {
                return 1;
            }
            if (bDigit) {
                return -1;
            }
            break;
        }
        if (firstDiff !== 0) {
            return firstDiff < 0 ? -1 : 1;
        }
    }
    return 0;
}

// Result of `scan`, kept in module variables so the fast path allocates nothing.
let scanEpoch = 0;
let scanUpstreamEnd = 0;
let scanRevisionStart = 0;
let scanStart = 0;

/**
 * Fast path of `splitVersion` for the common shape: printable ASCII without blanks, epoch of at
 * most 9 plain digits. Returns false when the version needs the full treatment.
 */
function scan(s: string): boolean {
    const n = s.length;
    let colon = -1;
    let hyphen = -1;
    for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
        if (c === 0x3a) {
            if (colon < 0) {
                colon = i;
            }
        } else if (c === 0x2d) {
            hyphen = i;
        }
    }
    let epoch = 0;
    let start = 0;
    if (colon >= 0) {
        if (colon === 0 || colon > 9 || colon === n - 1) {
            return false;
        }
        for (let i = 0; i < colon; i++) {
            const c = s.charCodeAt(i);
            if (c < 0x30 || c > 0x39) {
                return false;
            }
            epoch = epoch * 10 + (c - 0x30);
        }
        start = colon + 1;
    }
    let upstreamEnd = n;
    let revisionStart = n;
    if (hyphen >= start) {
        if (hyphen === n - 1) {
            return false;
        }
        upstreamEnd = hyphen;
        revisionStart = hyphen + 1;
    }
    if (upstreamEnd === start) {
        return false;
    }
    scanEpoch = epoch;
    scanStart = start;
    scanUpstreamEnd = upstreamEnd;
    scanRevisionStart = revisionStart;
    return true;
}

/** The string with one code unit per UTF-8 byte, which is what dpkg compares. */
function toBytes(s: string): string {
    for (let i = 0; i < s.length; i++) {
        if (s.charCodeAt(i) >= 0x80) {
            return Buffer.from(s, "utf8").toString("latin1");
        }
    }
    return s;
}

function compareSlow(a: string, b: string): number {
    const pa = splitVersion(a);
    const pb = splitVersion(b);
    if (pa.epoch !== pb.epoch) {
        return pa.epoch < pb.epoch ? -1 : 1;
    }
    const au = toBytes(pa.upstream);
    const bu = toBytes(pb.upstream);
    const r = verrevcmp(au, 0, au.length, bu, 0, bu.length);
    if (r !== 0) {
        return r;
    }
    const ar = toBytes(pa.revision);
    const br = toBytes(pb.revision);
    return verrevcmp(ar, 0, ar.length, br, 0, br.length);
}

/**
 * Orders two versions as dpkg does: -1 when `a` is older, 0 when equal, 1 when newer. Throws
 * an `ERR_PARSE` AirgapError when either version is rejected by dpkg (see `parseVersion`).
 */
export function compareVersions(a: string, b: string): number {
    if (!scan(a)) {
        return compareSlow(a, b);
    }
    const aEpoch = scanEpoch;
    const aStart = scanStart;
    const aUpstreamEnd = scanUpstreamEnd;
    const aRevisionStart = scanRevisionStart;
    if (!scan(b)) {
        return compareSlow(a, b);
    }
    if (aEpoch !== scanEpoch) {
        return aEpoch < scanEpoch ? -1 : 1;
    }
    const r = verrevcmp(a, aStart, aUpstreamEnd, b, scanStart, scanUpstreamEnd);
    if (r !== 0) {
        return r;
    }
    return verrevcmp(a, aRevisionStart, a.length, b, scanRevisionStart, b.length);
}

/** True when `version` stands in relation `op` to `ref` (`version op ref`, as in `Depends`). */
export function satisfies(version: string, op: VersionOp, ref: string): boolean {
    const c = compareVersions(version, ref);
    switch (op) {
        case "<<":
            return c < 0;
        case "<=":
        case "<":
            return c <= 0;
        case "=":
            return c === 0;
        case ">=":
        case ">":
            return c >= 0;
        case ">>":
            return c > 0;
        default:
            throw invalidArgument("op", `unknown version relation ${JSON.stringify(op)}; use <<, <=, =, >= or >>`);
    }
}
