/**
 * Bounded concurrency, the one implementation the engines use: a loop over a list with at most
 * `limit` items in flight, and a counting semaphore for work that arrives over time.
 */

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in list order. A rejection of `fn`
 * rejects the whole run (the other calls in flight finish first); callers that collect failures
 * catch inside `fn`. With `signal`, no new item starts once it is aborted.
 */
export async function forEachLimited<T>(
    items: readonly T[],
    limit: number,
    fn: (item: T, index: number) => Promise<void>,
    options: { signal?: AbortSignal } = {},
): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
        while (next < items.length && !options.signal?.aborted) {
            const index = next++;
            await fn(items[index]!, index);
        }
    };
    const workers = Math.max(1, Math.min(Math.max(1, Math.floor(limit)), items.length));
    await Promise.all(Array.from({ length: workers }, worker));
}

/** A counting semaphore: `run` waits while `limit` tasks are running. */
export class Limiter {
    private active = 0;
    private readonly waiting: (() => void)[] = [];

    constructor(private readonly limit: number) {}

    async run<T>(task: () => Promise<T>): Promise<T> {
        if (this.active >= this.limit) {
            await new Promise<void>((resolve) => this.waiting.push(resolve));
        } else {
            this.active++;
        }
        try {
            return await task();
        } finally {
            const next = this.waiting.shift();
            if (next !== undefined) {
                next();
            } else {
                this.active--;
            }
        }
    }
}
