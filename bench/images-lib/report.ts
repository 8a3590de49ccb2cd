/** Formatting the benchmark's numbers as Markdown tables (printed, and pasted into bench/README.md). */

export const MiB = 1024 * 1024;

export function mib(bytes: number | undefined): string {
    return bytes === undefined ? "–" : (bytes / MiB).toFixed(1);
}

export function seconds(ms: number): string {
    return (ms / 1000).toFixed(2);
}

export function ratio(ours: number, theirs: number): string {
    if (theirs === 0) {
        return ours === 0 ? "0 / 0" : "∞";
    }
    return `${(ours / theirs).toFixed(2)}×`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
    const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
    return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
