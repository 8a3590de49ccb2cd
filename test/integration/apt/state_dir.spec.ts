/**
 * The mirrors' engine state (downloads, caches, stamps, hash memos, locks) lives outside the
 * served tree: a web server or a mirror VM image carries only what clients read.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { downloadDir, removeMirror, stateDirOf, syncMirror } from "../../../provider/apt/mirror";
import { operations } from "../../../provider/apt/operations";
import { type OnePackageSite, onePackageSite } from "../../harness/fixtures/aptsite";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

describe("AptMirror engine state outside the served tree", function () {
    this.timeout(120_000);

    let site: OnePackageSite;
    before(async () => {
        site = await onePackageSite();
    });
    after(async () => {
        await site?.close();
        await cleanupAll();
    });
    const specFor = (root: string, stateDir?: string) => site.spec(root, stateDir === undefined ? {} : { stateDir });

    it("the root holds only the published prefix; downloads, stamps and memos are in <root>.airgap", async () => {
        const root = await makeTempDir("state-default");
        const spec = await specFor(root);
        await syncMirror(spec);
        assert.deepEqual(fs.readdirSync(root), ["debian"]);
        const served = fs.readdirSync(path.join(root, "debian"), { recursive: true }) as string[];
        assert.deepEqual(
            served.filter((p) => /airgap|stamp|hashes|downloads|\.lock/.test(p)),
            [],
        );
        assert.equal(stateDirOf(spec.publish), `${root}.airgap`);
        assert.deepEqual(fs.readdirSync(`${root}.airgap`).sort(), [
            "downloads",
            "hashes",
            "indexes",
            "locks",
            "stamps",
        ]);
        assert.equal(fs.readdirSync(downloadDir(spec)).length, 1);
        await removeMirror(spec);
        assert.deepEqual(fs.readdirSync(root), []);
        // Only the index cache (shared, pruned by age) is left of the state.
        assert.deepEqual(fs.readdirSync(`${root}.airgap`), ["indexes"]);
    });

    it("state an older version kept under <root>/.airgap is moved out, and the next sync downloads nothing", async () => {
        const root = await makeTempDir("state-legacy");
        const spec = await specFor(root);
        await syncMirror(spec);
        // What an older version left: the same state, inside the root.
        fs.renameSync(`${root}.airgap`, path.join(root, ".airgap"));
        site.server.clearLog();
        await syncMirror({ ...spec, publish: { ...spec.publish, origin: "again" } });
        assert.deepEqual(
            site.server.requests.filter((r) => r.path.startsWith("/pool/")),
            [],
        );
        assert.ok(!fs.existsSync(path.join(root, ".airgap")));
        assert.ok(fs.existsSync(downloadDir(spec)));
    });

    it("a chosen stateDir is used; one inside the served root is refused naming publish.stateDir", async () => {
        const root = await makeTempDir("state-chosen");
        const elsewhere = await makeTempDir("state-elsewhere");
        const spec = await specFor(root, elsewhere);
        assert.deepEqual((await operations.check({}, spec)).failures, []);
        await syncMirror(spec);
        assert.deepEqual(fs.readdirSync(root), ["debian"]);
        assert.ok(fs.existsSync(path.join(elsewhere, "stamps", "debian@bookworm")));
        assert.ok(!fs.existsSync(`${root}.airgap`));

        for (const inside of [path.join(root, "state"), root, path.dirname(root)]) {
            const { failures } = await operations.check(
                {},
                { ...spec, publish: { ...spec.publish, stateDir: inside } },
            );
            assert.equal(failures.length, 1, inside);
            assert.equal(failures[0]!.property, "publish.stateDir");
            assert.match(failures[0]!.reason, /must be outside publish\.root .*which is served/);
        }
        const relative = await operations.check({}, { ...spec, publish: { ...spec.publish, stateDir: "state" } });
        assert.deepEqual(relative.failures, [
            { property: "publish.stateDir", reason: '"state" must be an absolute path' },
        ]);
    });
});
