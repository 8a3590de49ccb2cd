/**
 * A sync a person can follow: progress lines (files, bytes, rate, time left) while packages
 * download, every `progressIntervalMs`, then a last line with the totals and lines around the
 * publish step. A local upstream that answers each pool file slowly makes the sync long enough.
 */
import assert from "node:assert/strict";
import { type AptMirrorSpec, syncMirror } from "../../../provider/apt/mirror";
import { providerSyncOptions } from "../../../provider/apt/operations";
import { aptProgressReporter, aptStepLog } from "../../../provider/apt/progress";
import { type AptRepo, buildRepo, type DebSpec, makeGpgKeyring, type GpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const PACKAGES: DebSpec[] = Array.from({ length: 8 }, (_, i) => ({
    name: `pkg${i}`,
    version: "1.0-1",
    size: 50_000 + i * 1000,
}));

describe("AptMirror progress lines during a sync (local upstream)", function () {
    this.timeout(120_000);
    let upstream: AptRepo;
    let server: StaticServer;
    let signing: GpgKeyring;

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            architectures: ["amd64"],
            components: { main: PACKAGES },
        });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
    });

    after(async () => {
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("prints lines while downloading, a last line with the totals, and the publish step", async () => {
        // Each pool file takes 150 ms, one at a time: about 1.2 s of downloads.
        server.fault(/^\/pool\//, { delayMs: 150 });
        const root = await makeTempDir("progress-root");
        const spec: AptMirrorSpec = {
            source: {
                url: server.url,
                distribution: "bookworm",
                components: ["main"],
                architectures: ["amd64"],
                key: upstream.publicKeyArmored,
            },
            packages: Object.fromEntries(PACKAGES.map((p) => [`${p.name}/amd64`, p.version])),
            publish: { root, prefix: "debian" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            concurrency: 1,
        };
        const lines: { at: number; line: string }[] = [];
        const write = (line: string) => lines.push({ at: Date.now(), line });
        const state = await syncMirror(spec, {
            onProgress: aptProgressReporter("debian", write),
            log: aptStepLog("debian", write),
            progressIntervalMs: 100,
        });
        assert.equal(state.packageCount, PACKAGES.length);

        const text = lines.map((l) => l.line).join("\n");
        const during = lines.filter((l) =>
            /^\[apt debian\] [0-7]\/8 files \(\d+%\), [\d.]+\/[\d.]+ MiB, [\d.]+ MiB\/s, \d+ files\/s, \d+ downloaded, 0 already here, (\d+(s|m\d\ds) left|time left unknown)$/.test(
                l.line,
            ),
        );
        assert.ok(during.length >= 3, `at least 3 lines before the downloads ended:\n${text}`);
        assert.ok(
            during.some((l) => / left$/.test(l.line)),
            `a line during the downloads says the time left:\n${text}`,
        );

        const total = state.bytes;
        const finalIndex = lines.findIndex((l) => l.line.includes("] done: "));
        assert.ok(finalIndex > 0, text);
        assert.match(
            lines[finalIndex]!.line,
            new RegExp(
                `^\\[apt debian\\] done: 8/8 files, ${(total / 1048576).toFixed(1)} MiB in \\d+s \\([\\d.]+ MiB/s\\), 8 downloaded, 0 already here$`,
            ),
        );
        assert.match(lines[finalIndex + 1]!.line, /^\[apt debian\] publishing 8 packages under /);
        assert.match(lines.at(-1)!.line, /^\[apt debian\] published 8 packages in \d+s$/);
    });

    it("the provider passes syncMirror both reporters", () => {
        const options = providerSyncOptions("debian");
        assert.equal(typeof options.onProgress, "function");
        assert.equal(typeof options.log, "function");
        assert.equal(options.upstream, undefined);
    });
});
