import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../../harness/servers/process";
import { type SshServer, startSshd } from "../../harness/servers/sshd";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

describe("harness: sshd", function () {
    this.timeout(60_000);
    let sshd: SshServer;

    before(async () => {
        sshd = await startSshd();
    });
    after(async () => {
        await sshd?.stop();
        await cleanupAll();
    });

    it("logs in with the client key and strict host key checking", async () => {
        const result = await run("ssh", [...sshd.sshArgs(), `${sshd.user}@127.0.0.1`, "echo", "hello-from-sshd"]);
        assert.equal(result.stdout.trim(), "hello-from-sshd");
    });

    it("works with the documented pieces alone (key, port, known_hosts)", async () => {
        const dir = await makeTempDir("ssh-client");
        const knownHosts = join(dir, "known_hosts");
        await writeFile(knownHosts, `${sshd.knownHostsLine}\n`);
        assert.match(sshd.knownHostsLine, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
        await run("ssh", [
            "-F",
            "/dev/null",
            "-i",
            sshd.privateKeyPath,
            "-p",
            String(sshd.port),
            "-o",
            `UserKnownHostsFile=${knownHosts}`,
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            `${sshd.user}@127.0.0.1`,
            "true",
        ]);
    });

    it("supports sftp for file transfer", async () => {
        const dir = await makeTempDir("sftp");
        const src = join(dir, "up.txt");
        const back = join(dir, "down.txt");
        await writeFile(src, "over sftp\n");
        const remote = join(dir, "remote.txt");
        const batch = `put ${src} ${remote}\nget ${remote} ${back}\n`;
        const args = sshd.sshArgs().map((a) => (a === "-p" ? "-P" : a));
        await run("sftp", [...args, "-b", "-", `${sshd.user}@127.0.0.1`], { input: batch });
        assert.equal(await readFile(back, "utf8"), "over sftp\n");
    });

    it("rejects a host key that does not match known_hosts", async () => {
        const dir = await makeTempDir("ssh-wrong");
        const knownHosts = join(dir, "known_hosts");
        await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "other")]);
        const other = (await readFile(join(dir, "other.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
        await writeFile(knownHosts, `[127.0.0.1]:${sshd.port} ${other}\n`);
        const args = sshd
            .sshArgs()
            .map((a) => (a.startsWith("UserKnownHostsFile=") ? `UserKnownHostsFile=${knownHosts}` : a));
        const result = await run("ssh", [...args, `${sshd.user}@127.0.0.1`, "true"], { check: false });
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    it("stop() ends sshd and removes its files", async () => {
        const other = await startSshd();
        const key = other.privateKeyPath;
        await other.stop();
        assert.equal(existsSync(key), false);
        const result = await run("ssh", [...other.sshArgs(), `${other.user}@127.0.0.1`, "true"], { check: false });
        assert.notEqual(result.code, 0);
    });
});
