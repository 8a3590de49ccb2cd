import assert from "node:assert/strict";
import { hasCode } from "../../../provider/errors";
import { ext4SizeForStats, parseSize, type TreeStats, usedInodes } from "../../../provider/vm/disk";

const MiB = 1024 * 1024;

describe("parseSize", () => {
    it("reads bytes and binary units", () => {
        assert.equal(parseSize("size", "1073741824"), 1073741824);
        assert.equal(parseSize("size", "512M"), 512 * MiB);
        assert.equal(parseSize("size", "200G"), 200 * 1024 * MiB);
        assert.equal(parseSize("size", "1T"), 1024 * 1024 * MiB);
        assert.equal(parseSize("size", "64MiB"), 64 * MiB);
        assert.equal(parseSize("size", "10GB"), 10 * 1024 * MiB);
        assert.equal(parseSize("size", "4k"), 4096);
        assert.equal(parseSize("size", "1.5G"), 1536 * MiB);
        assert.equal(parseSize("size", " 100 B "), 100);
    });

    for (const junk of ["", "abc", "12X", "-5G", "1e9", "G", "0", "0.1K", "5 G B", "99999999P", "1..2G"]) {
        it(`refuses ${JSON.stringify(junk)} naming the argument`, () => {
            assert.throws(
                () => parseSize("dataDiskSize", junk),
                (err: unknown) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") &&
                    (err as { argument?: string }).argument === "dataDiskSize" &&
                    (err as Error).message.startsWith("dataDiskSize: "),
            );
        });
    }
});

describe("ext4SizeForStats", () => {
    const empty: TreeStats = {
        inodes: 1,
        fileBytes: 0,
        dataBlocks: 0,
        dirBlocks: 1,
        extentBlocks: 0,
        symlinkBlocks: 0,
    };

    it("adds 10 % and 64 MiB of headroom, in whole MiB", () => {
        const s = ext4SizeForStats(empty);
        assert.equal(s.fsBytes % MiB, 0);
        assert.equal(s.minimumBytes % MiB, 0);
        assert.ok(s.fsBytes >= s.minimumBytes * 1.1 + 64 * MiB);
        assert.ok(s.fsBytes < s.minimumBytes * 1.1 + 65 * MiB);
        assert.equal(s.inodes, Math.ceil(1 * 1.1) + 1024);
    });

    it("counts content, inode tables and a journal that grows with the filesystem", () => {
        const gib = 1024 * MiB;
        const big: TreeStats = { ...empty, inodes: 1000, fileBytes: 100 * gib, dataBlocks: (100 * gib) / 4096 };
        const s = ext4SizeForStats(big);
        assert.equal(s.contentBytes, 100 * gib + 4096);
        // Over 64 GiB mke2fs makes a 512 MiB journal; metadata stays a few percent.
        assert.ok(s.minimumBytes > 100 * gib + 512 * MiB, String(s.minimumBytes));
        assert.ok(s.minimumBytes < 100 * gib * 1.03, String(s.minimumBytes));
        const many: TreeStats = { ...empty, inodes: 1_000_000, dirBlocks: 10_000 };
        const m = ext4SizeForStats(many);
        // 1.1 million inodes of 256 bytes each.
        assert.ok(m.minimumBytes > 1_100_000 * 256, String(m.minimumBytes));
        assert.ok(m.inodes >= 1_100_000);
    });

    it("is monotonic in the content", () => {
        let last = 0;
        for (let blocks = 0; blocks < 3_000_000; blocks += 97_000) {
            const s = ext4SizeForStats({ ...empty, dataBlocks: blocks });
            assert.ok(s.fsBytes >= last, `${blocks}: ${s.fsBytes} < ${last}`);
            last = s.fsBytes;
        }
    });
});

describe("usedInodes", () => {
    it("lists every inode outside the free ranges of each group", () => {
        const out = [
            "Inodes per group:         16",
            "",
            "Group 0: (Blocks 0-32767) csum 0x1 [ITABLE_ZEROED]",
            "  Primary superblock at 0, Group descriptors at 1-1",
            "  Free blocks: 100-32767",
            "  Free inodes: 14-15",
            "Group 1: (Blocks 32768-65535) csum 0x2 [INODE_UNINIT, ITABLE_ZEROED]",
            "  Free blocks: 32768-65535",
            "  Free inodes: 17-32",
            "Group 2: (Blocks 65536-98303) csum 0x3",
            "  Free inodes: 33, 35-47",
            "Group 3: (Blocks 98304-131071) csum 0x4",
            "  Free inodes: ",
        ].join("\n");
        const expected = [
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            10,
            11,
            12,
            13,
            16,
            34,
            48,
            ...Array.from({ length: 16 }, (_, i) => 49 + i),
        ];
        assert.deepEqual(usedInodes(out), expected);
    });

    it("refuses output without the inode count per group", () => {
        assert.throws(
            () => usedInodes("Group 0: (Blocks 0-1)\n  Free inodes: 1-2\n"),
            (err: unknown) => hasCode(err, "ERR_PARSE"),
        );
    });
});
