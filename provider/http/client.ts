/**
 * The engines' HTTP client: GET with bounded retries over an undici dispatcher.
 *
 * Every function takes a `dispatcher` (proxies at real sites, injection in tests); without one
 * it uses a shared `Agent` with a bounded number of connections per origin. Redirects are
 * followed (mirrors often redirect to a CDN).
 *
 * Retried, with exponential backoff: 5xx answers, connection resets and other socket errors,
 * timeouts, and bodies cut short (fewer bytes than Content-Length). Never retried: 4xx answers
 * (404 becomes `ERR_NOT_FOUND`) and anything the caller's `signal` aborts. A request that still
 * fails after the last attempt becomes `ERR_NETWORK` naming the URL and the last cause.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { Agent, type Dispatcher, interceptors, request } from "undici";
import { AirgapError, hasCode, invalidArgument, isAirgapError } from "../errors";
import { contentLengthOf, readBodyCapped } from "./body";
import { parseRetryAfter, type RetryOptions, retryDelay } from "./retry";

export type { RetryOptions } from "./retry";

export interface HttpOptions {
    /** Defaults to the shared agent (`defaultDispatcher()`). */
    readonly dispatcher?: Dispatcher;
    readonly retry?: RetryOptions;
    /** Extra request headers, e.g. `user-agent`. */
    readonly headers?: Readonly<Record<string, string>>;
    /** Aborts the request (and any wait between attempts); the abort reason is thrown as is. */
    readonly signal?: AbortSignal;
    /**
     * Called before each retry with the attempt that failed (1-based) and why; for logging.
     * MUST NOT throw.
     */
    readonly onRetry?: (info: { url: string; attempt: number; error: Error; delayMs: number }) => void;
}

export interface DispatcherOptions {
    /** Connections per origin. Defaults to 8. */
    readonly connections?: number;
    /** Time to wait for response headers. Defaults to 60 s. */
    readonly headersTimeoutMs?: number;
    /** Time without body data before giving up. Defaults to 60 s. */
    readonly bodyTimeoutMs?: number;
}

/** A new agent with bounded connections per origin; the caller closes it. */
export function createDispatcher(options: DispatcherOptions = {}): Agent {
    const connections = options.connections ?? 8;
    if (!Number.isInteger(connections) || connections < 1) {
        throw invalidArgument("connections", `must be a positive integer, got ${connections}`);
    }
    return new Agent({
        connections,
        headersTimeout: options.headersTimeoutMs ?? 60_000,
        bodyTimeout: options.bodyTimeoutMs ?? 60_000,
    });
}

let shared: Agent | undefined;

/** The agent used when a caller gives no dispatcher; created on first use, never closed. */
export function defaultDispatcher(): Dispatcher {
    shared ??= createDispatcher();
    return shared;
}

const withRedirects = new WeakMap<Dispatcher, Dispatcher>();

function redirecting(dispatcher: Dispatcher): Dispatcher {
    let composed = withRedirects.get(dispatcher);
    if (composed === undefined) {
        composed = dispatcher.compose(interceptors.redirect({ maxRedirections: 5 }));
        withRedirects.set(dispatcher, composed);
    }
    return composed;
}

/** Drops a response body that will not be read, without an unhandled 'error' event. */
export function discard(body: Dispatcher.ResponseData["body"]): void {
    body.on("error", () => undefined);
    body.destroy();
}

/** A failure worth another attempt; `retryAfterMs` from a `Retry-After` header when given. */
export class TransientHttpError extends Error {
    readonly retryAfterMs?: number;
    constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
        super(message, options.cause === undefined ? undefined : { cause: options.cause });
        this.name = "TransientHttpError";
        this.retryAfterMs = options.retryAfterMs;
    }
}

/** Error codes of connection trouble that another attempt may cure (shared by every HTTP client here). */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
    "ECONNRESET",
    "ECONNREFUSED",
    "ECONNABORTED",
    "EPIPE",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "UND_ERR_SOCKET",
    "UND_ERR_CLOSED",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT",
    "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

/** True for errors that another attempt may cure (network trouble, 5xx, short bodies). */
export function isRetryable(err: unknown): boolean {
    if (err instanceof TransientHttpError) {
        return true;
    }
    for (let e: unknown = err, depth = 0; typeof e === "object" && e !== null && depth < 5; depth++) {
        const code = (e as { code?: unknown }).code;
        if (typeof code === "string" && RETRYABLE_NETWORK_CODES.has(code)) {
            return true;
        }
        e = (e as { cause?: unknown }).cause;
    }
    return false;
}

/** By name, not `instanceof`: a serialized provider may load a second copy of errors.ts. */
function describe(err: unknown): string {
    if (!(err instanceof Error)) {
        return String(err);
    }
    const code = (err as { code?: unknown }).code;
    let text = typeof code === "string" && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
    if (err.cause instanceof Error && !text.includes(err.cause.message)) {
        text += `: ${describe(err.cause)}`;
    }
    return text;
}

function backoff(attempt: number, retry: RetryOptions, err: unknown): number {
    if (err instanceof TransientHttpError && err.retryAfterMs !== undefined) {
        return retryDelay(attempt, retry, err.retryAfterMs);
    }
    // Jitter keeps many workers that failed together from retrying in lockstep.
    return Math.round(retryDelay(attempt, retry) * (0.5 + Math.random() * 0.5));
}

/**
 * Runs `attempt` until it succeeds, fails with something not retryable, or the attempts run out.
 * `AirgapError`s and aborts pass through unchanged; the last retryable failure becomes
 * `ERR_NETWORK` naming `url`.
 */
export async function withRetries<T>(
    url: string,
    options: HttpOptions,
    attempt: (attemptNumber: number) => Promise<T>,
): Promise<T> {
    const retry = options.retry ?? {};
    const attempts = retry.attempts ?? 4;
    if (!Number.isInteger(attempts) || attempts < 1) {
        throw invalidArgument("retry.attempts", `must be a positive integer, got ${attempts}`);
    }
    for (let n = 1; ; n++) {
        options.signal?.throwIfAborted();
        try {
            return await attempt(n);
        } catch (err) {
            if (options.signal?.aborted) {
                throw options.signal.reason;
            }
            if (!isRetryable(err)) {
                if (isAirgapError(err)) {
                    throw err;
                }
                throw new AirgapError("ERR_NETWORK", `GET ${url}: ${describe(err)}`, { cause: err });
            }
            if (n >= attempts) {
                const tries = attempts === 1 ? "1 attempt" : `${attempts} attempts`;
                throw new AirgapError("ERR_NETWORK", `GET ${url}: failed after ${tries}: ${describe(err)}`, {
                    cause: err,
                });
            }
            const delayMs = backoff(n, retry, err);
            options.onRetry?.({ url, attempt: n, error: err as Error, delayMs });
            await sleep(delayMs, undefined, options.signal === undefined ? undefined : { signal: options.signal });
        }
    }
}

function retryAfter(headers: Record<string, string | string[] | undefined>): number | undefined {
    const value = headers["retry-after"];
    return parseRetryAfter(Array.isArray(value) ? value[0] : value);
}

/** A 200 answer whose body the caller must consume or destroy. */
export interface OpenedResponse {
    readonly url: string;
    readonly statusCode: number;
    readonly headers: Record<string, string | string[] | undefined>;
    /** Content-Length when the server sent one. */
    readonly contentLength?: number;
    readonly body: Dispatcher.ResponseData["body"];
}

/**
 * One GET, no retry: resolves on a 2xx answer. 404 and 410 throw `ERR_NOT_FOUND`, other 4xx
 * `ERR_NETWORK`, 5xx a `TransientHttpError` (for `withRetries`).
 */
export async function openOnce(url: string, options: HttpOptions = {}): Promise<OpenedResponse> {
    const dispatcher = redirecting(options.dispatcher ?? defaultDispatcher());
    const response = await request(url, {
        method: "GET",
        dispatcher,
        headers: { ...options.headers },
        signal: options.signal,
    });
    const { statusCode, headers, body } = response;
    if (statusCode >= 200 && statusCode < 300) {
        return { url, statusCode, headers, contentLength: contentLengthOf(headers), body };
    }
    // Read a little of the error body for the message, then drop the rest.
    let detail = "";
    try {
        detail = (await readBodyCapped(body, 200, `GET ${url}: error body`, { overflow: "truncate" }))
            .toString("utf8")
            .trim();
    } catch {
        // the status is what matters
    }
    const status = `HTTP ${statusCode}${detail === "" ? "" : ` (${detail.split("\n")[0]})`}`;
    if (statusCode === 404 || statusCode === 410) {
        throw new AirgapError("ERR_NOT_FOUND", `GET ${url}: ${status}: not found`);
    }
    if (statusCode >= 500) {
        throw new TransientHttpError(status, { retryAfterMs: retryAfter(headers) });
    }
    throw new AirgapError("ERR_NETWORK", `GET ${url}: ${status}`);
}

/** A body that ended before Content-Length bytes arrived. */
export function truncatedBody(received: number, expected: number): TransientHttpError {
    return new TransientHttpError(`body truncated: received ${received} of ${expected} bytes (Content-Length)`);
}

export interface GetBytesOptions extends HttpOptions {
    /** Refuse bodies larger than this. Defaults to 64 MiB. */
    readonly maxBytes?: number;
}

/** GETs a small resource into memory, with retries. */
export async function getBytes(url: string, options: GetBytesOptions = {}): Promise<Buffer> {
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    return withRetries(url, options, async () => {
        const response = await openOnce(url, options);
        const bytes = await readBodyCapped(response.body, maxBytes, `GET ${url}: the body`, {
            declaredLength: response.contentLength,
        });
        const received = bytes.length;
        if (response.contentLength !== undefined && received !== response.contentLength) {
            throw truncatedBody(received, response.contentLength);
        }
        return bytes;
    });
}

/** `getBytes`, or undefined when the server answers 404/410. */
export async function getOptionalBytes(url: string, options: GetBytesOptions = {}): Promise<Buffer | undefined> {
    try {
        return await getBytes(url, options);
    } catch (err) {
        if (hasCode(err, "ERR_NOT_FOUND")) {
            return undefined;
        }
        throw err;
    }
}

/**
 * Joins a base URL and a `/`-separated relative path, percent-encoding only what cannot stand in
 * a URL path (white space, `%`, `?`, `#`, non-ASCII); `+` and `~` stay as Debian names spell them.
 */
export function joinUrl(base: string, relative: string): string {
    const encoded = relative
        .split("/")
        .map((segment) => segment.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@]/g, (c) => encodeURIComponent(c)))
        .join("/");
    return `${base.replace(/\/+$/, "")}/${encoded}`;
}
