import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cleanupAll, liveTempDirs, makeTempDir, removeTempDir } from "../../harness/tmp";

describe("harness: temp dirs", () => {
    let saved: string | undefined;
    before(() => {
        saved = process.env["KEEP_TMP"];
    });
    afterEach(() => {
        if (saved === undefined) delete process.env["KEEP_TMP"];
        else process.env["KEEP_TMP"] = saved;
    });

    it("makes distinct registered dirs and cleanupAll removes them", async () => {
        delete process.env["KEEP_TMP"];
        const a = await makeTempDir("spec a/b");
        const b = await makeTempDir("spec a/b");
        assert.notEqual(a, b);
        assert.match(a, /airgap-spec-a-b-/);
        await writeFile(join(a, "f"), "x");
        assert.ok(liveTempDirs().includes(a));
        await cleanupAll();
        assert.equal(existsSync(a), false);
        assert.equal(existsSync(b), false);
        assert.deepEqual(liveTempDirs(), []);
    });

    it("keeps dirs with KEEP_TMP=1", async () => {
        process.env["KEEP_TMP"] = "1";
        const a = await makeTempDir("spec-keep");
        await cleanupAll();
        assert.equal(existsSync(a), true);
        delete process.env["KEEP_TMP"];
        const again = await makeTempDir("spec-keep");
        await removeTempDir(again);
        assert.equal(existsSync(again), false);
        // remove the kept one by hand, as a developer would
        await rm(a, { recursive: true, force: true });
    });
});
