/**
 * What an AptMirror trusts, and for how long: the fingerprints that pin the upstream's keys,
 * where a key may be fetched from, the refusal of an upstream Release older than the one last
 * synced (a replay), and the validity of the Release we publish.
 */
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import { AirgapError, invalidArgument } from "../errors";
import type { VerificationKeys } from "../pgp/verify";

/** A fingerprint as written by people: hex digits, spaces allowed, any case; 40 (v4) or 64 (v5/v6) digits. */
const FINGERPRINT = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;

/**
 * The fingerprints of `source.keyFingerprints`, upper-case hex without spaces. Throws
 * `ERR_INVALID_ARGUMENT` naming `source.keyFingerprints[i]` for one that is not a fingerprint.
 */
export function normalizeFingerprints(list: unknown): string[] {
    if (!Array.isArray(list) || list.length === 0) {
        throw invalidArgument(
            "source.keyFingerprints",
            "must be a non-empty list of key fingerprints (40 or 64 hex digits, spaces allowed)",
        );
    }
    return list.map((value, i) => {
        const hex = typeof value === "string" ? value.replace(/\s+/g, "").toUpperCase() : "";
        if (!FINGERPRINT.test(hex)) {
            throw invalidArgument(
                `source.keyFingerprints[${i}]`,
                `${JSON.stringify(value)} is not a key fingerprint: give its 40 (or 64) hex digits, as \`gpg --fingerprint\` shows them`,
            );
        }
        return hex;
    });
}

/**
 * Checks where `source.keyUrl` points: https:// and file:// are accepted, http:// only when the
 * key is pinned by `source.keyFingerprints` (a key read in clear is only as good as its pin).
 */
export function checkKeyUrl(keyUrl: unknown, pinned: boolean): URL {
    let url: URL | undefined;
    try {
        url = typeof keyUrl === "string" ? new URL(keyUrl) : undefined;
    } catch {
        url = undefined;
    }
    if (url === undefined) {
        throw invalidArgument("source.keyUrl", `${JSON.stringify(keyUrl)} is not an absolute URL`);
    }
    if (url.protocol === "http:" && !pinned) {
        throw invalidArgument(
            "source.keyUrl",
            `${JSON.stringify(keyUrl)} is fetched in clear: use https:// or file://, or pin the key with source.keyFingerprints`,
        );
    }
    if (url.protocol !== "https:" && url.protocol !== "file:" && url.protocol !== "http:") {
        throw invalidArgument(
            "source.keyUrl",
            `${JSON.stringify(keyUrl)}: only https:// and file:// URLs are accepted (http:// with source.keyFingerprints)`,
        );
    }
    return url;
}

/** The bytes of a file:// key URL; errors name `source.keyUrl`. */
export function readKeyFile(url: URL): Buffer {
    try {
        return fs.readFileSync(fileURLToPath(url));
    } catch (cause) {
        throw invalidArgument("source.keyUrl", `${url.href} cannot be read: ${(cause as Error).message}`, cause);
    }
}

/**
 * The loaded keys whose primary fingerprint is pinned; the others are dropped. None pinned among
 * them is an `ERR_VERIFICATION` naming `source.keyFingerprints` and the fingerprints seen.
 */
export function pinKeys(loaded: VerificationKeys, pins: readonly string[]): VerificationKeys {
    const keep = loaded.keys.filter((key) => pins.includes(key.getFingerprint().toUpperCase()));
    if (keep.length === 0) {
        throw new AirgapError(
            "ERR_VERIFICATION",
            `source.keyFingerprints: none of the keys given (key, keyUrl, keyring) is listed: ${describePins(loaded, pins)}`,
            { argument: "source.keyFingerprints" },
        );
    }
    return { keys: keep, fingerprints: keep.map((key) => key.getFingerprint().toUpperCase()) };
}

/** `keys given A, B; listed C`, for messages. */
export function describePins(loaded: Pick<VerificationKeys, "fingerprints"> | undefined, pins: readonly string[]) {
    const seen = loaded === undefined || loaded.fingerprints.length === 0 ? "none" : loaded.fingerprints.join(", ");
    return `keys given ${seen}; listed ${pins.join(", ")}`;
}

/** Milliseconds of `publish.validFor`: a number of seconds, or "90s", "30m", "12h", "7d", "2w". */
export function validForMs(validFor: unknown): number {
    const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
    let seconds: number | undefined;
    if (typeof validFor === "number") {
        seconds = validFor;
    } else if (typeof validFor === "string") {
        const m = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(validFor);
        seconds = m === null ? undefined : Number(m[1]) * units[m[2] || "s"];
    }
    if (seconds === undefined || !Number.isInteger(seconds) || seconds < 1 || seconds > 10 * 366 * 86400) {
        throw invalidArgument(
            "publish.validFor",
            `${JSON.stringify(validFor)} must be a duration such as "7d", "12h", "30m" or a number of seconds (at most 10 years)`,
        );
    }
    return seconds * 1000;
}

/** An ISO 8601 date the lock records (`upstreamDate`), or undefined when absent or unreadable. */
export function dateOf(value: unknown): Date | undefined {
    if (typeof value !== "string" || value === "") {
        return undefined;
    }
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
}

export interface DowngradeInputs {
    source?: { distribution?: string };
    /** The upstream Release `Date` the lock was resolved from (ISO 8601). */
    upstreamDate?: string;
    allowDowngrade?: boolean;
}

/**
 * The refusal of an upstream Release dated before the one the previous inputs were resolved
 * from (a replayed Release, still correctly signed), unless `allowDowngrade`; undefined when
 * there is nothing to refuse (no previous date, an older state without one, no Date upstream).
 */
export function downgradeProblem(
    olds: DowngradeInputs | undefined,
    news: DowngradeInputs,
    words = { now: "resolved now", before: "the one last synced" },
): string | undefined {
    const before = dateOf(olds?.upstreamDate);
    const now = dateOf(news.upstreamDate);
    if (before === undefined || now === undefined || now.getTime() >= before.getTime() || news.allowDowngrade) {
        return undefined;
    }
    const suite = news.source?.distribution ?? olds?.source?.distribution ?? "?";
    return `the upstream Release of ${JSON.stringify(suite)} ${words.now} is dated ${now.toISOString()}, older than ${before.toISOString()} (${words.before}): the server may be replaying an old Release; check source, or set allowDowngrade: true to go back to it`;
}

/**
 * True when a Release published with `publish.validFor` should be signed again: its
 * `Valid-Until` is unknown or less than half the period away.
 */
export function renewalDue(validUntil: unknown, validForMs: number | undefined, now: Date): boolean {
    if (validForMs === undefined) {
        return false;
    }
    const until = validUntil instanceof Date ? validUntil : dateOf(validUntil);
    return until === undefined || until.getTime() - now.getTime() < validForMs / 2;
}
