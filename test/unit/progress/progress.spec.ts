import assert from "node:assert/strict";
import { estimateLeftMs, formatDuration, formatProgress } from "../../../provider/progress";
import { aptProgressReporter } from "../../../provider/apt/progress";

describe("progress lines", () => {
    it("says what is done of what, the bytes, the rates and the time left", () => {
        const line = formatProgress({
            done: 1200,
            total: 20000,
            unit: "files",
            bytes: 35 * 1048576,
            bytesTotal: 612 * 1048576,
            elapsedMs: 5000,
            detail: "1200 downloaded, 0 already here",
        });
        assert.equal(
            line,
            "1200/20000 files (6%), 35.0/612.0 MiB, 7.0 MiB/s, 240 files/s, 1200 downloaded, 0 already here, 1m22s left",
        );
    });

    it("the last line holds the totals and no time left", () => {
        assert.equal(
            formatProgress({ done: 30, total: 30, unit: "images", bytes: 116 * 1048576, elapsedMs: 9750, final: true }),
            "done: 30/30 images, 116.0 MiB in 10s (11.9 MiB/s)",
        );
    });

    it("estimates from bytes when their total is known, else from items, else not at all", () => {
        const base = { unit: "files", elapsedMs: 10_000 };
        assert.equal(estimateLeftMs({ ...base, done: 1, total: 10, bytes: 25, bytesTotal: 100 }), 30_000);
        assert.equal(estimateLeftMs({ ...base, done: 5, total: 10, bytes: 25 }), 10_000);
        assert.equal(estimateLeftMs({ ...base, done: 0, total: 10, bytes: 0, bytesTotal: 100 }), undefined);
        assert.match(formatProgress({ ...base, done: 0, total: 10, bytes: 0 }), /time left unknown$/);
    });

    it("durations read as seconds, minutes or hours", () => {
        assert.deepEqual([0, 4_400, 78_000, 3_600_000 + 5 * 60_000].map(formatDuration), [
            "0s",
            "4s",
            "1m18s",
            "1h05m",
        ]);
    });

    it("the APT reporter prefixes its label and uses the download's own clock", () => {
        const lines: string[] = [];
        const report = aptProgressReporter("debian", (l) => lines.push(l));
        const p = {
            filesDone: 2,
            filesTotal: 4,
            bytesDone: 1048576,
            bytesTotal: 2 * 1048576,
            bytesReceived: 1048576,
            bytesPerSecond: 0,
            downloaded: 2,
            reused: 0,
            failed: 1,
        };
        report({ ...p, elapsedMs: 2000 });
        report({ ...p, filesDone: 4, bytesDone: 2 * 1048576, elapsedMs: 4000, final: true });
        assert.deepEqual(lines, [
            "[apt debian] 2/4 files (50%), 1.0/2.0 MiB, 0.5 MiB/s, 1 files/s, 2 downloaded, 0 already here, 1 failed, 2s left",
            "[apt debian] done: 4/4 files, 2.0 MiB in 4s (0.5 MiB/s), 2 downloaded, 0 already here, 1 failed",
        ]);
    });
});
