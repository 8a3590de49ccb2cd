/**
 * How the provider process asks V8 to size its heap. A mirror sync holds a suite's records for
 * its whole run while it streams thousands of files through short-lived buffers and promises; by
 * default V8 lets the young generation and the old one grow well past what the sync keeps alive
 * before it collects. Measured on a cold sync of a 20,000-package suite (bench:apt), the provider
 * process peaked at 334–348 MiB by default and at 172–186 MiB with V8's `--optimize-for-size`
 * set when the sync began, its live heap being about 60–100 MiB either way.
 *
 * `--optimize-for-size` is one of the flags V8 reads while running (its heap-growing and
 * new-space heuristics ask it at each decision), so setting it after start-up takes effect. It
 * changes no result, only how eagerly memory is collected and returned. The provider process is
 * Pulumi's host for the program's dynamic resources; the engine's library entry points
 * (`syncMirror`, ...) do not set it, so a program calling them keeps its own settings.
 */
import { setFlagsFromString } from "node:v8";

let favored = false;

/** Asks V8 for a smaller heap, once per process: called by the provider before a sync. */
export function favorSmallHeap(): void {
    if (favored) {
        return;
    }
    favored = true;
    setFlagsFromString("--optimize-for-size");
}
