/**
 * `favorSmallHeap`: the provider's request for a smaller V8 heap takes effect in a running
 * process, and the APT provider makes it before a sync. Each measurement is its own node
 * process (the flag is process-wide and cannot be unset), running the same workload: indexes
 * parsed into records that are kept while their entries are written, as a publish does.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { SMALL_HEAP_FLAG } from "../../../provider/heap";

const heapModule = path.resolve(__dirname, "../../../provider/heap.js");

const control = path.resolve(__dirname, "../../../provider/apt/control.js");
const indexes = path.resolve(__dirname, "../../../provider/apt/publish_indexes.js");
const parse = path.resolve(__dirname, "../../../bench/lib/parse.js");

// What a publish does, three times over: a 20,000-stanza index parsed into records that are
// kept, each record's Packages entry written and joined; most of it garbage soon after.
const workload = `
const favor = process.argv[1] === "favor";
if (favor) require(${JSON.stringify(heapModule)}).favorSmallHeap();
const { parseStanzas, toPackageRecord } = require(${JSON.stringify(control)});
const { publishedStanza } = require(${JSON.stringify(indexes)});
const { syntheticIndex } = require(${JSON.stringify(parse)});
const kept = [];
let peak = 0;
for (let round = 0; round < 3; round++) {
    const records = parseStanzas(syntheticIndex(20_000).toString()).map((s) => toPackageRecord(s, "main"));
    const written = records.map((r) => publishedStanza(r, r.filename)).join("\\n");
    if (written.length === 0) throw new Error("nothing written");
    kept.push(...records);
    peak = Math.max(peak, process.memoryUsage().heapTotal);
}
process.stdout.write(JSON.stringify({ peak, kept: kept.length }));
`;

function peakHeap(favor: boolean): number {
    const out = execFileSync(process.execPath, ["-e", workload, favor ? "favor" : "default"], { encoding: "utf8" });
    const result = JSON.parse(out) as { peak: number; kept: number };
    assert.equal(result.kept, 60_000);
    return result.peak;
}

describe("heap", () => {
    it("favorSmallHeap set in a running process lowers the heap's peak on a publish's parse and write", function () {
        this.timeout(120_000);
        const byDefault = peakHeap(false);
        const favored = peakHeap(true);
        assert.ok(
            favored < byDefault * 0.85,
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
            assert.deepEqual(flags, [SMALL_HEAP_FLAG], `operations.${op} (${outcome})`);
            if (op !== "read") {
                assert.notEqual(outcome, "ok", `operations.${op} was expected to fail on the closed port`);
            }
        }
    });
});
