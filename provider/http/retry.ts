/**
 * The retry policy of every HTTP client here (APT downloads and registries alike): how many
 * attempts, and how long to wait before each further one.
 */

export interface RetryOptions {
    /** Total attempts, the first one included. Defaults to 4. */
    readonly attempts?: number;
    /** Delay before the second attempt; doubles on each further one. Defaults to 250 ms. */
    readonly baseDelayMs?: number;
    /** Upper bound of one delay (also for `Retry-After`). Defaults to 10 s. */
    readonly maxDelayMs?: number;
}

export const RETRY_DEFAULTS = { attempts: 4, baseDelayMs: 250, maxDelayMs: 10_000 } as const;

/**
 * The delay before retry number `retry` (1 for the first retry): `baseDelayMs * 2^(retry-1)`,
 * at most `maxDelayMs`, or the server's `Retry-After` (in ms, also bounded) when given.
 */
export function retryDelay(retry: number, options: RetryOptions = {}, retryAfterMs?: number): number {
    const base = options.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs;
    const max = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
    if (retryAfterMs !== undefined) {
        return Math.min(max, retryAfterMs);
    }
    return Math.min(max, base * 2 ** Math.max(0, retry - 1));
}

/** A `Retry-After` header value in ms: delay-seconds or an HTTP date; undefined when neither. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
    if (value === undefined) {
        return undefined;
    }
    const text = value.trim();
    if (/^\d+$/.test(text)) {
        return Number(text) * 1000;
    }
    const date = Date.parse(text);
    return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
