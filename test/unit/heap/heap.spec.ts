/**
 * `favorSmallHeap`: the provider's request for a smaller V8 heap takes effect in a running
 * process, and the APT provider makes it before a sync. Each measurement is its own node
 * process (the flag is process-wide and cannot be unset), running the same workload: records
 * kept for the whole run while short-lived objects stream through, as a sync does.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";

const heapModule = path.resolve(__dirname, "../../../provider/heap.js");

// A suite's records kept (about 60 MB), then files streamed through: objects that live across
// a few event-loop turns (so they outlive the young generation) and are then dropped.
const workload = `
const favor = process.argv[1] === "favor";
if (favor) require(${JSON.stringify(heapModule)}).favorSmallHeap();
const kept = [];
for (let i = 0; i < 300_000; i++) kept.push(("p" + i).padEnd(180, "x") + i);
let peak = 0;
(async () => {
    let inflight = [];
    for (let i = 0; i < 600_000; i++) {
        inflight.push({ path: ("/tmp/downloads/" + i).padEnd(120, "y"), n: i, parts: [i, i + 1] });
        if (inflight.length > 20_000) inflight = [];
        if (i % 2000 === 0) {
            await new Promise((resolve) => setImmediate(resolve));
            peak = Math.max(peak, process.memoryUsage().heapTotal);
        }
    }
    process.stdout.write(JSON.stringify({ peak, kept: kept.length }));
})();
`;

function peakHeap(favor: boolean): number {
    const out = execFileSync(process.execPath, ["-e", workload, favor ? "favor" : "default"], { encoding: "utf8" });
    const result = JSON.parse(out) as { peak: number; kept: number };
    assert.equal(result.kept, 300_000);
    return result.peak;
}

describe("heap", () => {
    it("favorSmallHeap set in a running process lowers the heap's peak on a sync-like workload", function () {
        this.timeout(120_000);
        const byDefault = peakHeap(false);
        const favored = peakHeap(true);
        assert.ok(
            favored < byDefault * 0.8,
            `peak heap ${(favored / 2 ** 20).toFixed(1)} MiB favored, ${(byDefault / 2 ** 20).toFixed(1)} MiB by default`,
        );
    });

    it("the APT provider asks for it in create, update and read, before it reaches the upstream or the disk", () => {
        // Each operation in a fresh process whose V8 flag calls are recorded; the upstream is a
        // closed port, so create and update fail after the call; read finds nothing published.
        const operationsModule = path.resolve(__dirname, "../../../provider/apt/operations.js");
        const script = `
const v8 = require("node:v8");
const flags = [];
const real = v8.setFlagsFromString;
v8.setFlagsFromString = (flag) => { flags.push(flag); real(flag); };
const { operations } = require(${JSON.stringify(operationsModule)});
const root = require("node:fs").mkdtempSync(require("node:path").join(require("node:os").tmpdir(), "airgap-heap-"));
const inputs = {
    source: { url: "http://127.0.0.1:9/debian", distribution: "bookworm", allowUnsigned: true },
    packages: "app/amd64 1.0-1\\n",
    publish: { root, prefix: "debian" },
    allowUnsigned: true,
};
const run = {
    create: () => operations.create(inputs),
    update: () => operations.update("id", inputs, inputs),
    read: () => operations.read("id", { ...inputs, publishedPath: root + "/debian" }),
}[process.argv[1]];
run().then(() => "ok", (err) => String(err.message).split("\\n")[0]).then((outcome) => {
    require("node:fs").rmSync(root, { recursive: true, force: true });
    process.stdout.write(JSON.stringify({ flags, outcome }));
});
`;
        for (const op of ["create", "update", "read"]) {
            const out = execFileSync(process.execPath, ["-e", script, op], { encoding: "utf8" });
            const { flags, outcome } = JSON.parse(out) as { flags: string[]; outcome: string };
            assert.deepEqual(flags, ["--optimize-for-size"], `operations.${op} (${outcome})`);
            if (op !== "read") {
                assert.notEqual(outcome, "ok", `operations.${op} was expected to fail on the closed port`);
            }
        }
    });
});
