/**
 * The small pure parts of talking to a registry's HTTP API: scopes, which failures and statuses are
 * worth a retry, pagination links, upload ranges, and the registry's error bodies.
 */

import { readBodyCapped } from "../http/body";
import { RETRYABLE_NETWORK_CODES } from "../http/client";
import type { RegistryResponse } from "./registry_client";

/** Tokens are renewed this long before they expire. */
/** The distribution token spec's default lifetime when `expires_in` is absent. */
/** Codes and messages of TLS certificate failures: never retried. */
export const TLS_ERROR_RE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME/;
const MAX_ERROR_BODY = 64 * 1024;

/** `repository:<name>:<actions>`. */
export function repositoryScope(repository: string, actions: string): string {
    return `repository:${repository}:${actions}`;
}

/** True for errors of a connection (not of a TLS certificate check) worth another attempt. */
export function isRetriableNetworkError(err: unknown): boolean {
    let e: unknown = err;
    for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
        const code = (e as { code?: unknown }).code;
        if (typeof code === "string") {
            if (TLS_ERROR_RE.test(code)) {
                return false;
            }
            if (RETRYABLE_NETWORK_CODES.has(code)) {
                return true;
            }
        }
        e = (e as { cause?: unknown }).cause;
    }
    return false;
}

/** True for statuses worth another attempt: 5xx, and 429 (the registry asks to come back later). */
export function isRetriableStatus(status: number): boolean {
    return status >= 500 || status === 429;
}

/** The URL of `rel="next"` in a `Link` header (tag list pagination), resolved against `base`. */
export function nextLink(header: string | undefined, base: URL): URL | undefined {
    if (header === undefined) {
        return undefined;
    }
    for (const part of header.split(",")) {
        const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
        if (m !== null && /(^|;)\s*rel="?next"?\s*(;|$)/.test(m[2]!)) {
            return new URL(m[1]!, base);
        }
    }
    return undefined;
}

/**
 * The number of bytes an upload holds, from the `Range: 0-<last>` header of an upload status.
 * NOTE: distribution answers "0-0" both for an empty upload and for one byte; this returns 0 then.
 */
export function uploadedBytes(range: string | undefined): number | undefined {
    const m = /^(?:bytes=)?0-(\d+)$/.exec((range ?? "").trim());
    if (m === null) {
        return undefined;
    }
    const last = Number(m[1]);
    return last === 0 ? 0 : last + 1;
}

/** "CODE: message" for each entry of a distribution error body (`{"errors": [...]}`), or a snippet of the text. */
export function describeErrorBody(text: string): string {
    try {
        const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
        if (Array.isArray(doc.errors) && doc.errors.length > 0) {
            return doc.errors
                .map((e) => [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "))
                .join("; ");
        }
    } catch {
        // not JSON: fall through to the text itself
    }
    const oneLine = text.replace(/\s+/g, " ").trim();
    return oneLine.length > 200 ? `${oneLine.slice(0, 200)}...` : oneLine;
}

/** The error codes (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, ...) of a distribution error body. */
export function errorCodes(text: string): string[] {
    try {
        const doc = JSON.parse(text) as { errors?: { code?: unknown }[] };
        return Array.isArray(doc.errors)
            ? doc.errors.map((e) => e.code).filter((c): c is string => typeof c === "string")
            : [];
    } catch {
        return [];
    }
}

/** Reads an error body as text: its first `MAX_ERROR_BODY` bytes, the rest cancelled. */
export async function readErrorText(res: RegistryResponse): Promise<string> {
    try {
        const bytes = await readBodyCapped(res.body, MAX_ERROR_BODY, "error body", { overflow: "truncate" });
        return bytes.toString("utf8");
    } catch {
        // the status says enough
        return "";
    }
}

/** The first value of a header. */
export function header(res: { headers: RegistryResponse["headers"] }, name: string): string | undefined {
    const v = res.headers[name];
    return Array.isArray(v) ? v[0] : v;
}

export function messageOf(err: unknown): string {
    if (err instanceof Error) {
        const code = (err as { code?: unknown }).code;
        const cause = err.cause === undefined ? "" : ` (${messageOf(err.cause)})`;
        return `${err.message}${typeof code === "string" && !err.message.includes(code) ? ` [${code}]` : ""}${cause}`;
    }
    return String(err);
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
