/**
 * One suite for the transport interface, run against every implementation: the local directory,
 * SSH over SFTP, and SSH through `sudo -n` over exec (real sshd on 127.0.0.1).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAirgapError } from "../../../provider/errors";
import { SshTransport } from "../../../provider/host/ssh";
import { type HostTransport, LocalTransport } from "../../../provider/host/transport";
import { type SshServer, startSshd } from "../../harness/servers/sshd";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

describe("host transports: one contract, every implementation", function () {
    this.timeout(120_000);
    let sshd: SshServer;
    before(async () => {
        sshd = await startSshd();
    });
    after(() => sshd?.stop());

    const kinds: [string, (root: string) => Promise<HostTransport>][] = [
        ["local", async (root) => new LocalTransport(root)],
        ...[false, true].map((sudo): [string, (root: string) => Promise<HostTransport>] => [
            sudo ? "ssh with sudo" : "ssh (SFTP)",
            (root) =>
                SshTransport.connect({
                    host: sshd.host,
                    port: sshd.port,
                    user: sshd.user,
                    privateKey: fs.readFileSync(sshd.privateKeyPath, "utf8"),
                    hostKey: sshd.hostPublicKey,
                    root,
                    sudo,
                }),
        ]),
    ];

    for (const [kind, open] of kinds) {
        describe(kind, () => {
            let root: string;
            let t: HostTransport;
            beforeEach(async () => {
                root = await makeTempDir("transport");
                t = await open(root);
            });
            afterEach(async () => {
                await t.close();
                await removeTempDir(root);
            });

            it("writes atomically with the mode asked, creating parents, leaving no temporary file", async () => {
                const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 39, 34]);
                await t.writeFileAtomic("a/b/c.bin", bytes, 0o640);
                assert.deepEqual(fs.readFileSync(path.join(root, "a/b/c.bin")), bytes);
                assert.equal(fs.statSync(path.join(root, "a/b/c.bin")).mode & 0o7777, 0o640);
                await t.writeFileAtomic("a/b/c.bin", "second\n", 0o600);
                assert.equal(fs.readFileSync(path.join(root, "a/b/c.bin"), "utf8"), "second\n");
                assert.equal(fs.statSync(path.join(root, "a/b/c.bin")).mode & 0o7777, 0o600);
                assert.deepEqual(fs.readdirSync(path.join(root, "a/b")), ["c.bin"]);
                assert.deepEqual(await t.readFile("a/b/c.bin"), Buffer.from("second\n"));
                const s = await t.stat("a/b/c.bin");
                assert.equal(s?.mode, 0o600);
                assert.equal(s?.isDirectory, false);
                assert.equal((await t.stat("a"))?.isDirectory, true);
            });

            it("reports missing files as undefined, lists, copies with the mode, removes", async () => {
                assert.equal(await t.readFile("nope"), undefined);
                assert.equal(await t.stat("nope"), undefined);
                assert.equal(await t.exists("nope"), false);
                assert.equal(await t.list("nope"), undefined);
                await t.rm("nope"); // nothing to remove: no error
                fs.writeFileSync(path.join(root, "it's a file"), "x", { mode: 0o604 });
                fs.mkdirSync(path.join(root, "d"));
                assert.deepEqual(await t.list("."), ["d", "it's a file"]);
                await t.copy("it's a file", "d/e/copy");
                assert.equal(fs.readFileSync(path.join(root, "d/e/copy"), "utf8"), "x");
                assert.equal(fs.statSync(path.join(root, "d/e/copy")).mode & 0o7777, 0o604);
                await assert.rejects(t.rmdir("d"));
                await t.rm("d/e/copy");
                await t.rmdir("d/e");
                await t.rmdir("d");
                await t.mkdir("x/y/z");
                assert.ok(fs.statSync(path.join(root, "x/y/z")).isDirectory());
                assert.deepEqual(fs.readdirSync(root).sort(), ["it's a file", "x"]);
            });

            it("refuses a path that leaves the root", async () => {
                await assert.rejects(t.writeFileAtomic("../escape", "x", 0o644), (err: Error) => {
                    assert.ok(isAirgapError(err) && err.code === "ERR_INVALID_ARGUMENT", String(err));
                    assert.match(err.message, /leaves the root/);
                    return true;
                });
                assert.ok(!fs.existsSync(path.join(path.dirname(root), "escape")));
            });

            it("runs commands with their exit code, output and error output", async () => {
                const r = await t.run(`echo out; echo "err 'q'" >&2; exit 7`);
                assert.deepEqual(r, { code: 7, stdout: "out\n", stderr: "err 'q'\n" });
                assert.equal((await t.run("true")).code, 0);
            });
        });
    }
});
