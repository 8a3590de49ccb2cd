import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { privateTempDir } from "../../../provider/store/private";

describe("privateTempDir", () => {
    const name = `airgap-private-test-${process.pid}`;
    const dir = path.join(os.tmpdir(), `${name}-${process.getuid?.() ?? os.userInfo().username}`);
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("makes a directory only this user can read and write, and hands it back again", () => {
        assert.equal(privateTempDir(name), dir);
        assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
        assert.equal(privateTempDir(name), dir);
    });

    it("refuses a directory of that name that others can write to, naming it", () => {
        fs.mkdirSync(dir, { mode: 0o777 });
        fs.chmodSync(dir, 0o777);
        assert.throws(
            () => privateTempDir(name),
            (err: Error & { code?: string }) => {
                assert.equal(err.code, "ERR_IO");
                assert.ok(err.message.startsWith(`${dir} is not a private directory of this user`), err.message);
                return true;
            },
        );
    });
});
