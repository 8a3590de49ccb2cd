import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type AptMirrorSpec, readMirror, syncMirror } from "../../../provider/apt/mirror";
import { parseRelease } from "../../../provider/apt/release";
import { makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * `publish.validFor`: the Release we sign carries `Valid-Until`, a real apt-get accepts it while
 * valid and refuses it as expired afterwards; a refresh reports the coming expiry as drift, and
 * the next sync signs it again.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("AptMirror publish.validFor: Valid-Until on the published Release", function () {
    this.timeout(180_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;

    const spec = (prefix: string, validFor: string | number): AptMirrorSpec => ({
        source: {
            url: upstreamServer.url,
            distribution: "bookworm",
            components: ["main"],
            architectures: ["amd64"],
            key: upstream.publicKeyArmored,
        },
        packages: { "app/amd64": "1.0-1" },
        publish: { root, prefix, validFor },
        signing: { privateKey: signing.keys[0]!.privateKeyArmored },
    });
    const releaseOf = (prefix: string) =>
        parseRelease(readFileSync(join(root, prefix, "dists", "bookworm", "Release"), "utf8"));
    /** `apt-get update` against the published prefix, with apt's own Valid-Until check on. */
    const aptUpdate = async (prefix: string) => {
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer.url}/${prefix}`,
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: signing.publicKeysArmored,
                },
            ],
            config: { "Acquire::Check-Valid-Until": "true" },
        });
        try {
            return await client.update();
        } finally {
            await client.close();
        }
    };

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "app", version: "1.0-1", size: 8_000 }] },
        });
        upstreamServer = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("valid-until-root");
        mirrorServer = await startStaticServer(root);
    });

    after(async () => {
        await mirrorServer?.close();
        await upstreamServer?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("validFor: 7d signs Valid-Until a week after Date; apt-get update accepts it", async () => {
        const state = await syncMirror(spec("week", "7d"));
        const release = releaseOf("week");
        assert.ok(release.date !== undefined && release.validUntil !== undefined, "no Date or Valid-Until");
        assert.equal(release.validUntil!.getTime() - release.date!.getTime(), 7 * 86_400_000);
        assert.equal(state.validUntil, release.validUntil!.toISOString());
        const inRelease = readFileSync(join(root, "week", "dists", "bookworm", "InRelease"), "utf8");
        assert.ok(inRelease.includes(`Valid-Until: `), "Valid-Until is not in the signed InRelease");
        const update = await aptUpdate("week");
        assert.ok(update.ok, update.stdout + update.stderr);
        assert.deepEqual((await readMirror(state)).drift, []);
    });

    it("past Valid-Until apt-get update refuses the Release as expired; refresh reports it; the next sync renews it", async () => {
        const state = await syncMirror(spec("short", 2));
        const first = releaseOf("short");
        assert.equal(first.validUntil!.getTime() - first.date!.getTime(), 2000);
        await sleep(3100);

        const refused = await aptUpdate("short");
        const output = refused.stdout + refused.stderr;
        assert.ok(!refused.ok, `apt-get update accepted an expired Release:\n${output}`);
        assert.match(output, /is expired/, output);

        const drift = (await readMirror(state)).drift;
        assert.equal(drift.length, 1, drift.join("\n"));
        assert.match(drift[0]!, /^expiring: dists\/bookworm\/Release: Valid-Until .* publish\.validFor/);

        // The same inputs: the stamp alone would return the recorded state; the expiry makes it sign again.
        const renewed = await syncMirror(spec("short", 2));
        assert.ok(releaseOf("short").validUntil!.getTime() > first.validUntil!.getTime(), "Valid-Until not renewed");
        assert.notEqual(renewed.releaseSha256, state.releaseSha256);
        const update = await aptUpdate("short");
        assert.ok(update.ok, update.stdout + update.stderr);
    });
});
