import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listPoolFiles, removePoolFiles } from "../../../provider/apt/pool";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

describe("apt pool: removing the files a suite dropped", () => {
    after(cleanupAll);

    it("removes only the given files, then the directories they leave empty, up to pool/", async () => {
        const repo = await makeTempDir("pool-remove");
        const files = [
            "pool/main/a/app/app_1.0_amd64.deb",
            "pool/main/a/app/app_1.1_amd64.deb",
            "pool/main/libf/libfoo/libfoo1_1.0_amd64.deb",
            "pool/contrib/x/xtra/xtra_1_all.deb",
        ];
        for (const rel of files) {
            mkdirSync(join(repo, rel, ".."), { recursive: true });
            writeFileSync(join(repo, rel), rel);
        }
        writeFileSync(join(repo, "not-pool.txt"), "x");
        const removed = await removePoolFiles(repo, [
            "pool/main/libf/libfoo/libfoo1_1.0_amd64.deb",
            "pool/main/a/app/app_1.0_amd64.deb",
            "pool/contrib/x/xtra/xtra_1_all.deb",
            "../not-pool.txt",
            "pool/../not-pool.txt",
            "pool/main/../../not-pool.txt",
            "pool/main/z/gone/gone_1_all.deb",
        ]);
        assert.deepEqual(removed, [
            "pool/contrib/x/xtra/xtra_1_all.deb",
            "pool/main/a/app/app_1.0_amd64.deb",
            "pool/main/libf/libfoo/libfoo1_1.0_amd64.deb",
        ]);
        assert.deepEqual(await listPoolFiles(repo), ["pool/main/a/app/app_1.1_amd64.deb"]);
        assert.deepEqual(Object.keys(snapshotTree(repo)).sort(), [
            "not-pool.txt",
            "pool",
            "pool/main",
            "pool/main/a",
            "pool/main/a/app",
            "pool/main/a/app/app_1.1_amd64.deb",
        ]);
    });
});
