/**
 * How the provider process asks V8 to size its heap. A mirror sync holds a suite's records for
 * its whole run while it streams thousands of files through short-lived buffers, strings and
 * promises. After each full collection V8 lets the old generation grow by a factor it picks
 * from the collector's and the program's speeds, up to 4× what survived; for a sync that is
 * mostly garbage promoted from downloads and index writing. Measured on a cold sync of a
 * 20,000-package suite (bench:apt), the provider process peaked at 334–348 MiB, its live heap
 * being 60–100 MiB.
 *
 * `--heap-growing-percent=50` caps that factor at 1.5. V8 reads the flag at every full
 * collection, so setting it once the process runs takes effect; it changes no result, only how
 * soon garbage is collected. Tried side by side on the parse-and-write path of a 20,000-stanza
 * index: the heap's peak 310 → 216 MiB for 0–10 % more time; `--optimize-for-size` gave the same
 * peak but took 45–85 % more time (it also trades speed in the compiler), and a young generation
 * kept small (`--semi-space-growth-factor=1`) did not lower the peak.
 *
 * The provider process is Pulumi's host for the program's dynamic resources; the engine's
 * library entry points (`syncMirror`, ...) do not set it, so a program calling them keeps its
 * own settings.
 */
import { setFlagsFromString } from "node:v8";

/** The V8 flag the provider sets before a sync. */
export const SMALL_HEAP_FLAG = "--heap-growing-percent=50";

let favored = false;

/** Asks V8 to collect before the heap grows far past what survived, once per process. */
export function favorSmallHeap(): void {
    if (favored) {
        return;
    }
    favored = true;
    setFlagsFromString(SMALL_HEAP_FLAG);
}
