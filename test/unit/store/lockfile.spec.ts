import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { takeLock } from "../../../provider/store/lockfile";

describe("takeLock", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-lockfile-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("keeps one holder at a time while other runs remove the lock's directory once it is empty", async () => {
        const locks = path.join(dir, "state", "locks");
        const file = path.join(locks, "debian@bookworm.lock");
        let holders = 0;
        let most = 0;
        let taken = 0;
        // Each run, after releasing, removes the folder if empty (as removeEmptyStateDirs does).
        const runWithRmdir = async () => {
            for (let i = 0; i < 150; i++) {
                const lock = await takeLock(file, 10_000);
                holders++;
                most = Math.max(most, holders);
                taken++;
                await new Promise((resolve) => setImmediate(resolve));
                holders--;
                await lock.release();
                try {
                    fs.rmdirSync(locks);
                } catch {
                    // not empty: another run holds the lock
                }
            }
        };
        await Promise.all([runWithRmdir(), runWithRmdir(), runWithRmdir()]);
        assert.equal(taken, 450);
        assert.equal(most, 1);
    });

    it("waits its time, then fails naming the holder", async () => {
        const file = path.join(dir, "x.lock");
        const held = await takeLock(file, 1000);
        try {
            await assert.rejects(takeLock(file, 300), (err: Error & { code?: string }) => {
                assert.equal(err.code, "ERR_CONFLICT");
                assert.match(err.message, new RegExp(`x\\.lock is held by ${process.pid}@`));
                return true;
            });
        } finally {
            await held.release();
        }
    });
});
