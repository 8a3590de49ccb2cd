import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HashMemo, verifiedSha256 } from "../../../provider/store/hashcache";

const sha = (data: string) => createHash("sha256").update(data).digest("hex");

describe("store/hashcache: HashMemo", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-hashcache-"));
    });
    afterEach(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("hashes a file once, then answers from the memo, across a save and load", async () => {
        const file = path.join(dir, "a.deb");
        fs.writeFileSync(file, "first content");
        const memoFile = path.join(dir, "work", "hashes");
        const memo = await HashMemo.load(memoFile);
        assert.deepEqual(await memo.verifiedSha256(file), { sha256: sha("first content"), size: 13 });
        assert.deepEqual(await memo.verifiedSha256(file), { sha256: sha("first content"), size: 13 });
        assert.equal(memo.misses, 1);
        assert.equal(memo.hits, 1);
        await memo.save();

        const again = await HashMemo.load(memoFile);
        assert.equal(await again.isVerified(file, 13, sha("first content")), true);
        assert.equal(await again.isVerified(file, 13, sha("other content")), false);
        assert.equal(await again.isVerified(file, 14, sha("first content")), false);
        assert.equal(await again.isVerified(path.join(dir, "absent"), 13, sha("first content")), false);
        assert.equal(again.misses, 0);
    });

    it("misses for a file rewritten with the same size and its modification time restored", async () => {
        const file = path.join(dir, "a.deb");
        fs.writeFileSync(file, "AAAA");
        fs.utimesSync(file, 1_700_000_000, 1_700_000_000); // whole seconds: restorable exactly
        const memoFile = path.join(dir, "hashes");
        const memo = await HashMemo.load(memoFile);
        assert.equal((await memo.verifiedSha256(file))?.sha256, sha("AAAA"));
        await memo.save();
        const before = fs.statSync(file);

        // In place: same inode, same size, mtime set back; only ctime tells.
        await new Promise((resolve) => setTimeout(resolve, 20));
        fs.writeFileSync(file, "BBBB");
        fs.utimesSync(file, 1_700_000_000, 1_700_000_000);
        assert.equal(fs.statSync(file).mtimeMs, before.mtimeMs);
        assert.equal(fs.statSync(file).ino, before.ino);
        const reloaded = await HashMemo.load(memoFile);
        assert.equal((await reloaded.verifiedSha256(file))?.sha256, sha("BBBB"));
        assert.equal(reloaded.misses, 1);

        // Replaced by another file: a new inode.
        const other = path.join(dir, "b.tmp");
        fs.writeFileSync(other, "CCCC");
        fs.utimesSync(other, 1_700_000_000, 1_700_000_000);
        fs.renameSync(other, file);
        assert.equal((await reloaded.verifiedSha256(file))?.sha256, sha("CCCC"));
        assert.equal(reloaded.misses, 2);
    });

    it("serves a hard link from the entry of the file it links to", async () => {
        const file = path.join(dir, "download.deb");
        fs.writeFileSync(file, "package bytes");
        const memo = HashMemo.inMemory();
        const link = path.join(dir, "pool.deb");
        fs.linkSync(file, link); // changes the shared inode's ctime: link first, then hash
        assert.equal(await memo.isVerified(file, 13, sha("package bytes")), true);
        assert.equal(await memo.isVerified(link, 13, sha("package bytes")), true);
        assert.equal(memo.misses, 1);
        assert.equal(memo.hits, 1);
    });

    it("records a file just verified by the caller", async () => {
        const file = path.join(dir, "placed.deb");
        fs.writeFileSync(file, "placed");
        const memo = HashMemo.inMemory();
        await memo.record(file, sha("placed"));
        assert.equal(await memo.isVerified(file, 6, sha("placed")), true);
        assert.equal(memo.misses, 0);
    });

    it("ignores a damaged memo file and hashes without a memo", async () => {
        const memoFile = path.join(dir, "hashes");
        fs.writeFileSync(memoFile, "garbage\n1:2:3 nothex\n");
        const file = path.join(dir, "a.deb");
        fs.writeFileSync(file, "x");
        const memo = await HashMemo.load(memoFile);
        assert.equal((await memo.verifiedSha256(file))?.sha256, sha("x"));
        assert.equal(memo.misses, 1);
        assert.deepEqual(await verifiedSha256(file), { sha256: sha("x"), size: 1 });
        assert.equal(await verifiedSha256(path.join(dir, "absent")), undefined);
    });
});
