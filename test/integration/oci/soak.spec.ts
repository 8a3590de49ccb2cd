/**
 * Soak: image syncs killed with SIGKILL at random points while skopeo reads the destination the
 * whole time. A tag that resolves always has every blob (skopeo copies it whole), and each next
 * run completes without fetching again a blob the killed run had already stored. The figures are
 * printed for the record.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type ImageMirrorSpec, resolveImageLock, syncImages } from "../../../provider/oci/mirror";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { runAndKill } from "../../harness/kill";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { singleLayout, skopeo } from "./registry_helpers";

const mirrorModule = path.resolve(__dirname, "../../../provider/oci/mirror.js");
const KILLS = Number(process.env.AIRGAP_SOAK_KILLS ?? 10);
const LAYER = 400_000;

/** sha256 digests of the complete blobs a docker-registry (filesystem driver) stores. */
function storedBlobs(dataDir: string): Set<string> {
    const blobs = path.join(dataDir, "docker/registry/v2/blobs/sha256");
    const out = new Set<string>();
    for (const prefix of fs.existsSync(blobs) ? fs.readdirSync(blobs) : []) {
        for (const hex of fs.readdirSync(path.join(blobs, prefix))) {
            if (fs.existsSync(path.join(blobs, prefix, hex, "data"))) {
                out.add(`sha256:${hex}`);
            }
        }
    }
    return out;
}

describe("soak: image syncs killed at random points while skopeo reads", function () {
    this.timeout(900_000);

    let source: RegistryServer;
    let dest: RegistryServer;
    let work: string;

    before(async () => {
        [source, dest] = await Promise.all([startRegistry(), startRegistry()]);
        work = await makeTempDir("image-soak");
    });
    after(async () => {
        await source?.stop();
        await dest?.stop();
        await cleanupAll();
    });

    it(`${KILLS} syncs killed with SIGKILL: no tag without its blobs, no stored blob fetched twice`, async () => {
        // Two images to start with, two more for every killed run.
        const names = Array.from({ length: 2 + 2 * KILLS }, (_, i) => `${source.host}/src/app${i}:v1`);
        for (const [i, name] of names.entries()) {
            const layout = await singleLayout("v1", LAYER, i + 1);
            await skopeo(["copy", "--dest-tls-verify=false", layout, `docker://${name}`]);
        }
        const tls = { insecureRegistries: [source.host, dest.host] };
        const spec = async (count: number): Promise<ImageMirrorSpec> => ({
            images: await resolveImageLock({ images: names.slice(0, count), tls }),
            destination: `docker://${dest.host}`,
            repositoryPath: "strip-registry",
            tls,
        });
        const started = Date.now();
        let state = await syncImages(await spec(2));
        const twoImagesMs = Date.now() - started;

        const figures = {
            kills: 0,
            reads: 0,
            missingBlobs: 0,
            otherFailures: 0,
            resumeFetchedBytes: 0,
            refetchedBytes: 0,
        };
        const failures: string[] = [];
        let published = 2;
        let reading = true;
        const reader = (async () => {
            let n = 0;
            while (reading) {
                const ref = `docker://${dest.host}/src/app${n++ % published}:v1`;
                const inspect = await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false);
                if (inspect.code !== 0) {
                    continue; // not there yet
                }
                const target = path.join(work, "read");
                fs.rmSync(target, { recursive: true, force: true });
                const copy = await skopeo(["copy", "--src-tls-verify=false", ref, `dir:${target}`], false);
                figures.reads++;
                if (copy.code !== 0) {
                    const text = `${copy.stdout}${copy.stderr}`;
                    if (/blob unknown|BLOB_UNKNOWN|404/i.test(text)) figures.missingBlobs++;
                    else figures.otherFailures++;
                    failures.push(`${ref}: ${text}`);
                }
            }
        })();

        const specFile = path.join(work, "spec.json");
        try {
            for (let i = 0; i < KILLS; i++) {
                const next = await spec(2 + 2 * (i + 1));
                fs.writeFileSync(specFile, JSON.stringify(next));
                await runAndKill(mirrorModule, "syncImages", specFile, Math.random() * twoImagesMs * 1.2);
                figures.kills++;
                // What the killed run stored: the next run must not fetch it again.
                const stored = storedBlobs(dest.dataDir);
                const logFrom = source.log().length;
                state = await syncImages(next, { previous: state.pushed });
                published = 2 + 2 * (i + 1);
                for (const m of source
                    .log()
                    .slice(logFrom)
                    .matchAll(/"GET \/v2\/[^ ]+\/blobs\/(sha256:[0-9a-f]{64})[^"]*" 200 (\d+)/g)) {
                    figures.resumeFetchedBytes += Number(m[2]);
                    if (stored.has(m[1]!)) {
                        figures.refetchedBytes += Number(m[2]);
                    }
                }
                const reads = figures.reads;
                while (figures.reads < reads + 1) {
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
            }
        } finally {
            reading = false;
            await reader;
        }
        console.log(`      soak figures: ${JSON.stringify(figures)} (two images took ${twoImagesMs} ms)`);
        assert.equal(figures.kills, KILLS);
        assert.equal(state.pushed.length, names.length);
        assert.ok(figures.reads >= KILLS, `only ${figures.reads} reads`);
        assert.deepEqual(
            { missingBlobs: figures.missingBlobs, other: figures.otherFailures },
            { missingBlobs: 0, other: 0 },
            failures.slice(0, 3).join("\n-----\n"),
        );
        // The log is read right: the resumed runs fetched what the killed ones had not stored.
        assert.ok(figures.resumeFetchedBytes > 0, "no blob fetch seen in the source registry's log");
        assert.equal(figures.refetchedBytes, 0);
    });
});
