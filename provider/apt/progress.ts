/**
 * AptMirror's progress lines on stderr (the Pulumi CLI shows them beside the resource): files,
 * bytes, rate and time left every few seconds while packages download, the totals at the end,
 * and a line when publishing starts and ends.
 */
import { formatProgress } from "../progress";
import type { DownloadProgress } from "./download";

/** Download progress lines prefixed `[apt <label>]`. */
export function aptProgressReporter(
    label: string,
    write: (line: string) => void = (line) => console.error(line),
): (p: DownloadProgress) => void {
    const started = Date.now();
    return (p) => {
        const parts = [`${p.downloaded} downloaded`, `${p.reused} already here`];
        if (p.failed > 0) parts.push(`${p.failed} failed`);
        write(
            `[apt ${label}] ${formatProgress({
                done: p.filesDone,
                total: p.filesTotal,
                unit: "files",
                bytes: p.bytesDone,
                bytesTotal: p.bytesTotal,
                elapsedMs: p.elapsedMs ?? Date.now() - started,
                detail: parts.join(", "),
                final: p.final === true,
            })}`,
        );
    };
}

/** Step lines (publishing) prefixed `[apt <label>]`. */
export function aptStepLog(
    label: string,
    write: (line: string) => void = (line) => console.error(line),
): (line: string) => void {
    return (line) => write(`[apt ${label}] ${line}`);
}
