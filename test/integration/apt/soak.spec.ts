/**
 * Soak: syncs killed with SIGKILL at random points while apt-get reads the published mirror the
 * whole time. Clients never see a Hash Sum mismatch or a missing file, and each next run
 * completes without downloading again a file an earlier (killed) run had verified. The figures
 * are printed for the record.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type AptLock, type AptMirrorSpec, downloadDir, downloadName, syncMirror } from "../../../provider/apt/mirror";
import { type AptClient, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type DebSpec, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { runAndKill } from "../../harness/kill";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const mirrorModule = path.resolve(__dirname, "../../../provider/apt/mirror.js");
const KILLS = Number(process.env.AIRGAP_SOAK_KILLS ?? 10);
const NAMES = Array.from({ length: 16 }, (_, i) => `pkg${String(i).padStart(2, "0")}`);

describe("soak: APT syncs killed at random points while apt-get reads", function () {
    this.timeout(900_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let client: AptClient;
    let root: string;
    let work: string;

    before(async () => {
        // Two versions of every package; the locks alternate between them, so every sync
        // downloads, publishes a new generation and collects the old one's pool files.
        const debs: DebSpec[] = NAMES.flatMap((name, i) => [
            { name, version: "1.0-1", size: 150_000 + i * 1000 },
            { name, version: "2.0-1", size: 160_000 + i * 1000 },
        ]);
        upstream = await buildRepo({ distribution: "bookworm", components: { main: debs } });
        server = await startStaticServer(upstream.dir);
        // Slow enough that kills land in the downloads as well as in the publish.
        server.fault(/^\/pool\//, { delayMs: 40 });
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("soak-root");
        work = await makeTempDir("soak-work");
        mirrorServer = await startStaticServer(root);
        client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/debian/`,
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: signing.keys[0]!.publicKeyArmored,
                },
            ],
        });
    });

    after(async () => {
        await client?.close();
        await mirrorServer?.close();
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it(`${KILLS} syncs killed with SIGKILL: no Hash Sum mismatch, no missing file, no verified file downloaded twice`, async () => {
        const lockFor = (version: string): AptLock => Object.fromEntries(NAMES.map((n) => [`${n}/amd64`, version]));
        const spec = (version: string): AptMirrorSpec => ({
            source: {
                url: server.url,
                distribution: "bookworm",
                components: ["main"],
                architectures: ["amd64"],
                key: upstream.publicKeyArmored,
            },
            packages: lockFor(version),
            publish: { root, prefix: "debian", origin: "soak" },
            signing: { privateKey: signing.keys[0]!.privateKeyArmored },
        });
        const started = Date.now();
        await syncMirror(spec("1.0-1"));
        const fullSyncMs = Date.now() - started;

        // Readers, the whole time: update, then fetch every package the indexes name.
        const figures = { kills: 0, reads: 0, mismatches: 0, missing: 0, otherFailures: 0, reDownloadedBytes: 0 };
        const failures: string[] = [];
        let reading = true;
        const reader = (async () => {
            while (reading) {
                fs.rmSync(client.archivesDir, { recursive: true, force: true });
                fs.mkdirSync(path.join(client.archivesDir, "partial"), { recursive: true });
                const update = await client.update();
                const install = update.ok ? await client.installDownloadOnly(NAMES) : update;
                figures.reads++;
                const text = `${install.stdout}\n${install.stderr}`;
                if (/Hash Sum mismatch|Hashes do not match|File has unexpected size/i.test(text)) {
                    figures.mismatches++;
                    failures.push(text);
                } else if (/404\s+Not Found/i.test(text)) {
                    figures.missing++;
                    failures.push(text);
                } else if (!install.ok) {
                    figures.otherFailures++;
                    failures.push(text);
                }
            }
        })();

        const specFile = path.join(work, "spec.json");
        let version = "1.0-1";
        try {
            for (let i = 0; i < KILLS; i++) {
                version = version === "1.0-1" ? "2.0-1" : "1.0-1";
                fs.writeFileSync(specFile, JSON.stringify(spec(version)));
                await runAndKill(mirrorModule, "syncMirror", specFile, Math.random() * fullSyncMs * 1.2);
                figures.kills++;
                // What the killed run verified: the next run must not download it again.
                const verified = new Set(
                    fs.existsSync(downloadDir(spec(version))) ? fs.readdirSync(downloadDir(spec(version))) : [],
                );
                server.clearLog();
                const state = await syncMirror(spec(version));
                assert.deepEqual(state.packages, lockFor(version));
                for (const request of server.requests.filter((r) => r.path.startsWith("/pool/"))) {
                    const record = upstream
                        .debs("main")
                        .find((d) => `/${upstream.poolPath("main", d)}` === request.path);
                    if (
                        record !== undefined &&
                        verified.has(downloadName({ filename: request.path, sha256: record.sha256 }))
                    ) {
                        figures.reDownloadedBytes += record.size;
                    }
                }
                // At least one whole read across each kill and resume before the next.
                const reads = figures.reads;
                while (figures.reads < reads + 1) {
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
            }
        } finally {
            reading = false;
            await reader;
        }
        console.log(`      soak figures: ${JSON.stringify(figures)} (a full sync took ${fullSyncMs} ms)`);
        assert.equal(figures.kills, KILLS);
        assert.ok(figures.reads >= KILLS, `only ${figures.reads} reads`); // one per cycle, awaited
        assert.deepEqual(
            { mismatches: figures.mismatches, missing: figures.missing, other: figures.otherFailures },
            { mismatches: 0, missing: 0, other: 0 },
            failures.slice(0, 3).join("\n-----\n"),
        );
        assert.equal(figures.reDownloadedBytes, 0);
    });
});
