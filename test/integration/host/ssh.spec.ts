/**
 * HostMirrorConfig over SSH against a real OpenSSH server (`sshd -D -f <tmp config>` on
 * 127.0.0.1): the remote root is a temporary directory of this machine, so what the host holds
 * is checked by reading it directly.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { utils } from "ssh2";
import { isAirgapError } from "../../../provider/errors";
import { applyHost, journalPath } from "../../../provider/host/apply";
import { operations } from "../../../provider/host/operations";
import { SshTransport } from "../../../provider/host/ssh";
import type { HostTransport } from "../../../provider/host/transport";
import type { HostMirrorSpec, SshTarget } from "../../../provider/host/types";
import { makeTlsMaterial, type TlsMaterial } from "../../harness/fixtures/tls";
import { type SshServer, startSshd } from "../../harness/servers/sshd";
import { makeTempDir, removeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

function sshTargetOf(sshd: SshServer, root: string, extra: Partial<SshTarget> = {}): SshTarget {
    return {
        host: sshd.host,
        port: sshd.port,
        user: sshd.user,
        privateKey: fs.readFileSync(sshd.privateKeyPath, "utf8"),
        hostKey: sshd.hostPublicKey,
        root,
        ...extra,
    };
}

/** A transport that cuts its connection after `writes` file writes (journal writes not counted). */
class DroppingTransport implements HostTransport {
    private count = 0;
    constructor(
        private readonly inner: SshTransport,
        private readonly writes: number,
    ) {}
    get where() {
        return this.inner.where;
    }
    exists = (rel: string) => this.inner.exists(rel);
    stat = (rel: string) => this.inner.stat(rel);
    readFile = (rel: string) => this.inner.readFile(rel);
    async writeFileAtomic(rel: string, data: string | Buffer, mode: number) {
        await this.inner.writeFileAtomic(rel, data, mode);
        if (!rel.includes("pulumi-airgap/journal/") && ++this.count === this.writes) {
            this.inner.drop();
        }
    }
    copy = (a: string, b: string) => this.inner.copy(a, b);
    rm = (rel: string) => this.inner.rm(rel);
    rmdir = (rel: string) => this.inner.rmdir(rel);
    mkdir = (rel: string) => this.inner.mkdir(rel);
    list = (rel: string) => this.inner.list(rel);
    run = (command: string) => this.inner.run(command);
    close = () => this.inner.close();
}

describe("HostMirrorConfig over SSH (real sshd)", function () {
    this.timeout(120_000);

    let sshd: SshServer;
    let tls: TlsMaterial;
    let root: string;
    const original = "unqualified-search-registries = []\n# the site's own, kept byte for byte\r\n";
    const dropIn = "etc/containers/registries.conf.d/site.conf";

    const spec = (extra: Partial<SshTarget> = {}, more: Partial<HostMirrorSpec> = {}): HostMirrorSpec => ({
        name: "site",
        target: { ssh: sshTargetOf(sshd, root, extra) },
        registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
        caCertificates: [
            { name: "site-ca", pem: tls.caCertPem },
            { name: "site-ca-2", pem: tls.caCertPem },
        ],
        pip: { indexUrl: "http://mirror.example/pypi/simple/" },
        ...more,
    });

    before(async () => {
        sshd = await startSshd();
        tls = await makeTlsMaterial();
    });
    after(async () => {
        await sshd?.stop();
        await tls?.close();
    });
    beforeEach(async () => {
        root = await makeTempDir("ssh-root");
        fs.mkdirSync(path.join(root, "etc/containers/registries.conf.d"), { recursive: true });
        fs.writeFileSync(path.join(root, dropIn), original, { mode: 0o600 });
    });
    afterEach(() => removeTempDir(root));

    for (const sudo of [false, true]) {
        it(`${sudo ? "with sudo: " : ""}create writes the files with their modes and a backup, read finds drift, destroy restores byte for byte`, async () => {
            const before = snapshotTree(root);
            const created = await operations.create({ ...spec({ sudo }) });
            assert.equal(created.id, `ssh://${sshd.user}@127.0.0.1:${sshd.port}${root}#site`);
            const files = created.outs.files;
            assert.deepEqual(Object.keys(files).sort(), [
                "etc/containers/registries.conf.d/site.conf",
                "etc/pip.conf",
                "usr/local/share/ca-certificates/site-ca-2.crt",
                "usr/local/share/ca-certificates/site-ca.crt",
            ]);
            for (const [rel, hash] of Object.entries(files)) {
                const full = path.join(root, rel);
                assert.equal(sha256(fs.readFileSync(full)), hash, rel);
                assert.equal(fs.statSync(full).mode & 0o7777, 0o644, rel);
                if (sudo) assert.equal(fs.statSync(full).uid, 0, rel);
            }
            assert.match(fs.readFileSync(path.join(root, dropIn), "utf8"), /location = "mirror\.example:5000"/);
            // The original is kept byte for byte, with its mode, and no journal or temporary file is left.
            const backup = path.join(root, "var/lib/pulumi-airgap/backup/site", dropIn);
            assert.equal(fs.readFileSync(backup, "utf8"), original);
            assert.equal(fs.statSync(backup).mode & 0o7777, 0o600);
            assert.ok(!fs.existsSync(path.join(root, journalPath("site"))));
            assert.deepEqual(
                Object.keys(snapshotTree(root)).filter((p) => p.includes(".tmp-") || p.includes("journal")),
                [],
            );

            // Drift: a file edited on the host shows in read, and diff then proposes an update.
            fs.writeFileSync(path.join(root, "etc/pip.conf"), "[global]\nindex-url = http://evil.example/\n");
            const read = await operations.read(created.id, created.outs);
            assert.notEqual(read.props.files["etc/pip.conf"], files["etc/pip.conf"]);
            assert.equal(read.props.files[dropIn], files[dropIn]);
            const diff = await operations.diff(created.id, read.props, spec({ sudo }));
            assert.equal(diff.changes, true);
            const updated = await operations.update(created.id, read.props, spec({ sudo }));
            assert.deepEqual(updated.outs.files, files);
            assert.equal(sha256(fs.readFileSync(path.join(root, "etc/pip.conf"))), files["etc/pip.conf"]);
            assert.equal((await operations.diff(created.id, updated.outs, spec({ sudo }))).changes, false);

            await operations.delete(created.id, updated.outs);
            assert.deepEqual(snapshotTree(root), before);
            assert.equal(fs.readFileSync(path.join(root, dropIn), "utf8"), original);
        });
    }

    it("a host presenting another key is refused before anything is sent, naming both fingerprints", async () => {
        const other = utils.generateKeyPairSync("ed25519");
        const otherHostKey = other.public.trim().split(/\s+/).slice(0, 2).join(" ");
        const before = snapshotTree(root);
        await assert.rejects(operations.create(spec({ hostKey: otherHostKey })), (err: Error) => {
            assert.ok(isAirgapError(err) && err.code === "ERR_VERIFICATION", String(err));
            assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${sshd.port}: host key mismatch`));
            const blob = (k: string) => Buffer.from(k.split(" ")[1] as string, "base64");
            const fp = (k: string) =>
                `SHA256:${createHash("sha256").update(blob(k)).digest("base64").replace(/=+$/, "")}`;
            assert.ok(err.message.includes(`expected ssh-ed25519 ${fp(otherHostKey)}`), err.message);
            assert.ok(err.message.includes(`presented ${fp(sshd.hostPublicKey)}`), err.message);
            return true;
        });
        assert.deepEqual(snapshotTree(root), before);
    });

    it("a user key the host does not accept fails authentication, naming the host and user", async () => {
        const wrong = utils.generateKeyPairSync("ed25519");
        await assert.rejects(operations.create(spec({ privateKey: wrong.private })), (err: Error) => {
            assert.ok(isAirgapError(err) && err.code === "ERR_AUTH", String(err));
            assert.match(
                err.message,
                new RegExp(`ssh 127\\.0\\.0\\.1:${sshd.port}: authentication as "${sshd.user}" failed`),
            );
            return true;
        });
    });

    it("an unreachable host fails within the connect timeout, naming host:port", async () => {
        // A port nobody listens on: refused at once.
        const closed = await new Promise<number>((resolve) => {
            const s = net.createServer().listen(0, "127.0.0.1", () => {
                const port = (s.address() as net.AddressInfo).port;
                s.close(() => resolve(port));
            });
        });
        await assert.rejects(operations.create(spec({ port: closed })), (err: Error) => {
            assert.ok(isAirgapError(err) && err.code === "ERR_NETWORK", String(err));
            assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${closed}: cannot connect`));
            return true;
        });
        // A host that accepts the connection and never speaks: bounded by connectTimeoutMs.
        const sockets: net.Socket[] = [];
        const silent = net.createServer((s) => sockets.push(s));
        await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
        const port = (silent.address() as net.AddressInfo).port;
        try {
            const started = Date.now();
            await assert.rejects(operations.create(spec({ port, connectTimeoutMs: 1500 })), (err: Error) => {
                assert.ok(isAirgapError(err) && err.code === "ERR_NETWORK", String(err));
                assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}: no SSH`));
                assert.match(err.message, /1500 ms/);
                return true;
            });
            const elapsed = Date.now() - started;
            assert.ok(elapsed >= 1400 && elapsed < 5000, `took ${elapsed} ms`);
        } finally {
            for (const s of sockets) s.destroy();
            silent.close();
        }
    });

    it("a reload command runs only when a file it depends on changed; a failing one names the host, command and stderr, keeps the files and runs again next time", async () => {
        const marker = path.join(root, "reloads.log");
        const gate = path.join(root, "reload-may-succeed");
        const reload = [
            { command: `echo pip >> ${marker}`, after: ["etc/pip.conf"] },
            { command: `echo any >> ${marker}`, after: [] },
            { command: `echo ca >> ${marker}`, after: ["usr/local/share/ca-certificates/site-ca.crt"] },
        ];
        const created = await operations.create(spec({}, { reload }));
        assert.deepEqual(fs.readFileSync(marker, "utf8").split("\n"), ["pip", "any", "ca", ""]);
        // Nothing changed: nothing runs.
        const same = await operations.update(created.id, created.outs, spec({}, { reload }));
        assert.deepEqual(fs.readFileSync(marker, "utf8").split("\n"), ["pip", "any", "ca", ""]);
        // Only pip.conf changes: the pip and the catch-all commands run, in order.
        const pipChanged = await operations.update(
            created.id,
            same.outs,
            spec({}, { reload, pip: { indexUrl: "http://mirror2.example/pypi/simple/" } }),
        );
        assert.deepEqual(fs.readFileSync(marker, "utf8").split("\n"), ["pip", "any", "ca", "pip", "any", ""]);

        const failing = [
            ...reload,
            {
                command: `test -e ${gate} || { echo "unit mirror.service not found" >&2; exit 5; }; echo gated >> ${marker}`,
                after: ["etc/pip.conf"],
            },
        ];
        const third = spec({}, { reload: failing, pip: { indexUrl: "http://mirror3.example/pypi/simple/" } });
        await assert.rejects(operations.update(created.id, pipChanged.outs, third), (err: Error) => {
            assert.match(
                err.message,
                new RegExp(
                    `ssh://${sshd.user}@127\\.0\\.0\\.1:${sshd.port}${root}: reload command failed \\(exit 5\\)`,
                ),
            );
            assert.match(err.message, /test -e .*reload-may-succeed/);
            assert.match(err.message, /unit mirror\.service not found/);
            assert.match(
                err.message,
                /files were written and stay in place; the next `pulumi up` runs the command again/,
            );
            return true;
        });
        // The files stay as written.
        assert.match(fs.readFileSync(path.join(root, "etc/pip.conf"), "utf8"), /mirror3\.example/);
        // The engine keeps the old state after a failed update: the next run gets the old records and
        // nothing to write, yet runs the pending command again.
        fs.writeFileSync(gate, "");
        const retried = await operations.update(created.id, pipChanged.outs, third);
        assert.deepEqual(fs.readFileSync(marker, "utf8").split("\n").slice(-2), ["gated", ""]);
        assert.ok(!fs.existsSync(path.join(root, journalPath("site"))));
        await operations.delete(created.id, retried.outs);
        assert.equal(fs.readFileSync(path.join(root, dropIn), "utf8"), original);
        assert.ok(!fs.existsSync(path.join(root, "var")));
    });

    it("a connection cut between two file writes: the error says so, the outputs claim nothing, and the next run completes", async () => {
        const before = snapshotTree(root);
        const s = spec();
        const { renderHostFiles } = await import("../../../provider/host/render");
        const files = renderHostFiles(s);
        assert.ok(files.length >= 3);
        const inner = await SshTransport.connect(s.target.ssh as SshTarget);
        const t = new DroppingTransport(inner, 2);
        await assert.rejects(applyHost(t, "site", files, []), (err: Error) => {
            assert.ok(isAirgapError(err) && err.code === "ERR_NETWORK", String(err));
            assert.match(
                err.message,
                new RegExp(`ssh://${sshd.user}@127\\.0\\.0\\.1:${sshd.port}${root}: connection lost`),
            );
            assert.match(err.message, /next `pulumi up` completes the change/);
            return true;
        });
        await inner.close();
        // Two files were written, the others not; the journal on the host names what this resource owns.
        const written = files.filter((f) => {
            const full = path.join(root, f.path);
            return fs.existsSync(full) && fs.readFileSync(full, "utf8") === f.content;
        });
        assert.equal(written.length, 2);
        assert.ok(fs.existsSync(path.join(root, journalPath("site"))));

        // The failed create returned no state; the next `up` creates again and completes.
        const created = await operations.create(s);
        for (const f of files) {
            assert.equal(fs.readFileSync(path.join(root, f.path), "utf8"), f.content, f.path);
            assert.equal(created.outs.files[f.path], sha256(f.content));
        }
        // The original replaced in the cut run is still the one kept.
        assert.equal(fs.readFileSync(path.join(root, "var/lib/pulumi-airgap/backup/site", dropIn), "utf8"), original);
        assert.ok(!fs.existsSync(path.join(root, journalPath("site"))));
        await operations.delete(created.id, created.outs);
        assert.deepEqual(snapshotTree(root), before);
    });

    it("a connection cut during an update: the next update completes; destroy after a cut run restores everything", async () => {
        const before = snapshotTree(root);
        const created = await operations.create(spec({}, { caCertificates: [] }));
        const s = spec(); // adds two CA files
        const { renderHostFiles } = await import("../../../provider/host/render");
        const inner = await SshTransport.connect(s.target.ssh as SshTarget);
        // The first changed file is written, then the connection goes.
        await assert.rejects(
            applyHost(new DroppingTransport(inner, 1), "site", renderHostFiles(s), created.outs.records),
            /connection lost/,
        );
        await inner.close();
        assert.ok(fs.existsSync(path.join(root, journalPath("site"))));
        // Destroy with the state the engine kept (the old one): what the cut run wrote goes too.
        await operations.delete(created.id, created.outs);
        assert.deepEqual(snapshotTree(root), before);
    });

    it("permission denied on a path names the host and the path, and leaves nothing", async () => {
        const ro = await startSshd({ extraConfig: [`Match User ${userInfo()}`, "ForceCommand internal-sftp -R"] });
        try {
            const before = snapshotTree(root);
            await assert.rejects(
                operations.create({ ...spec(), target: { ssh: sshTargetOf(ro, root) } }),
                (err: Error) => {
                    assert.ok(isAirgapError(err), String(err));
                    assert.match(err.message, new RegExp(`ssh://${ro.user}@127\\.0\\.0\\.1:${ro.port}${root}: `));
                    assert.match(err.message, new RegExp(`${root}/\\S+: permission denied`));
                    return true;
                },
            );
            assert.deepEqual(snapshotTree(root), before);
        } finally {
            await ro.stop();
        }
    });

    it("two resources of one name on one host: the second is refused and the first's original kept", async () => {
        const first = await operations.create(spec());
        const managed = snapshotTree(root);
        await assert.rejects(
            operations.create({
                ...spec(
                    {},
                    {
                        registries: [
                            { source: "quay.io", mirrors: [`m${randomBytes(2).toString("hex")}.example:5000`] },
                        ],
                    },
                ),
            }),
            (err: Error) => {
                assert.ok(isAirgapError(err) && err.code === "ERR_CONFLICT", String(err));
                assert.match(
                    err.message,
                    new RegExp(
                        `ssh://.*${root}/var/lib/pulumi-airgap/backup/site/${dropIn.replace(/\./g, "\\.")} holds its original`,
                    ),
                );
                return true;
            },
        );
        assert.deepEqual(snapshotTree(root), managed);
        await operations.delete(first.id, first.outs);
        assert.equal(fs.readFileSync(path.join(root, dropIn), "utf8"), original);
    });
});

function userInfo(): string {
    return require("node:os").userInfo().username;
}
