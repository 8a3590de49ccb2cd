/**
 * Progress lines a person can follow while a long sync runs (the Pulumi CLI shows a provider's
 * stderr beside the resource): what is done of what, bytes, the rate and the time left.
 *
 *     [apt debian] 1200/20000 files (6%), 35.2/612.0 MiB, 7.0 MiB/s, 240 files/s, 1m18s left
 *     [apt debian] done: 20000 files, 612.0 MiB in 1m27s (7.0 MiB/s)
 */

/** How often a sync prints a progress line, unless told otherwise. */
export const PROGRESS_INTERVAL_MS = 5000;

export interface ProgressCounts {
    /** Items finished (files, images) of `total`. */
    readonly done: number;
    readonly total: number;
    /** What an item is, plural: "files", "images". */
    readonly unit: string;
    /** Bytes finished, and of how many when known. */
    readonly bytes: number;
    readonly bytesTotal?: number;
    /** Milliseconds since the sync started. */
    readonly elapsedMs: number;
    /** Said after the counts, e.g. "3 failed, 12 present". */
    readonly detail?: string;
    /** The last line: totals, no time left. */
    readonly final?: boolean;
}

function mib(bytes: number): string {
    return (bytes / 1048576).toFixed(1);
}

/** "1m18s", "4s", "2h05m". */
export function formatDuration(ms: number): string {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Time left, from the bytes when their total is known and some are done, else from the items; the
 * average rate since the start. Undefined when nothing is done yet.
 */
export function estimateLeftMs(c: ProgressCounts): number | undefined {
    if (c.bytesTotal !== undefined && c.bytesTotal > 0 && c.bytes > 0) {
        return (c.elapsedMs * Math.max(0, c.bytesTotal - c.bytes)) / c.bytes;
    }
    if (c.total > 0 && c.done > 0) {
        return (c.elapsedMs * Math.max(0, c.total - c.done)) / c.done;
    }
    return undefined;
}

/** One progress line (without the `[label]` prefix). */
export function formatProgress(c: ProgressCounts): string {
    const seconds = Math.max(c.elapsedMs, 1) / 1000;
    const rate = `${mib(c.bytes / seconds)} MiB/s`;
    const detail = c.detail === undefined || c.detail === "" ? "" : `, ${c.detail}`;
    if (c.final) {
        return (
            `done: ${c.done}/${c.total} ${c.unit}, ${mib(c.bytes)} MiB in ${formatDuration(c.elapsedMs)} ` +
            `(${rate})${detail}`
        );
    }
    const pct = c.total > 0 ? ` (${Math.floor((100 * c.done) / c.total)}%)` : "";
    const bytes = c.bytesTotal === undefined ? `${mib(c.bytes)} MiB` : `${mib(c.bytes)}/${mib(c.bytesTotal)} MiB`;
    const left = estimateLeftMs(c);
    return (
        `${c.done}/${c.total} ${c.unit}${pct}, ${bytes}, ${rate}, ${Math.round(c.done / seconds)} ${c.unit}/s` +
        `${detail}, ${left === undefined ? "time left unknown" : `${formatDuration(left)} left`}`
    );
}
