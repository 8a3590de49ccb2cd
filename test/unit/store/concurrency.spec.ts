import assert from "node:assert/strict";
import { forEachLimited, Limiter } from "../../../provider/store/concurrency";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("bounded concurrency", () => {
    it("forEachLimited visits every item once, in order, never more than `limit` at a time", async () => {
        let active = 0;
        let peak = 0;
        const started: number[] = [];
        await forEachLimited([10, 11, 12, 13, 14, 15, 16], 3, async (item, index) => {
            assert.equal(item, index + 10);
            started.push(item);
            active++;
            peak = Math.max(peak, active);
            await tick();
            active--;
        });
        assert.deepEqual(started, [10, 11, 12, 13, 14, 15, 16]);
        assert.equal(peak, 3);
    });

    it("forEachLimited starts no new item once the signal is aborted, and handles an empty list", async () => {
        const abort = new AbortController();
        const seen: number[] = [];
        await forEachLimited(
            [1, 2, 3, 4, 5],
            1,
            async (item) => {
                seen.push(item);
                if (item === 2) abort.abort();
            },
            { signal: abort.signal },
        );
        assert.deepEqual(seen, [1, 2]);
        await forEachLimited([], 4, async () => assert.fail("called for an empty list"));
    });

    it("forEachLimited rejects with the first failure", async () => {
        await assert.rejects(
            forEachLimited([1, 2, 3], 2, async (item) => {
                if (item === 2) throw new Error("item 2 failed");
            }),
            /item 2 failed/,
        );
    });

    it("Limiter runs at most `limit` tasks and hands each result back", async () => {
        const limiter = new Limiter(2);
        let active = 0;
        let peak = 0;
        const results = await Promise.all(
            [1, 2, 3, 4, 5].map((n) =>
                limiter.run(async () => {
                    active++;
                    peak = Math.max(peak, active);
                    await tick();
                    active--;
                    return n * 2;
                }),
            ),
        );
        assert.deepEqual(results, [2, 4, 6, 8, 10]);
        assert.equal(peak, 2);
    });
});
