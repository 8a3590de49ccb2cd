/**
 * HostMirrorConfig over SSH with the real Pulumi CLI, from a program directory, against a real
 * sshd on 127.0.0.1 whose "remote" roots are temporary directories of this machine.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeTlsMaterial, type TlsMaterial } from "../harness/fixtures/tls";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { type SshServer, startSshd } from "../harness/servers/sshd";
import { makeTempDir, removeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** The key comes from a secret config value; the rest of the arguments from plain config. */
const sshProgram = `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig, type HostMirrorConfigArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const args = config.requireObject<HostMirrorConfigArgs & { target: { ssh: Record<string, unknown> } }>("args");
const host = new HostMirrorConfig("site", {
    ...args,
    target: { ssh: { ...args.target.ssh, privateKey: config.requireSecret("sshKey") } as never },
});
export const files = host.files;
`;

describe("HostMirrorConfig over SSH with the real Pulumi CLI", function () {
    this.timeout(300_000);

    let sshd: SshServer;
    let tls: TlsMaterial;
    let root: string;
    let t: ProgramStack;
    let args: Record<string, unknown>;
    let original: Record<string, string>;
    let key: string;
    const preexisting = "unqualified-search-registries = []\r\n# the site's own\n";
    const dropIn = "etc/containers/registries.conf.d/site.conf";
    const marker = () => path.join(root, "reloads.log");
    const reloads = () => (fs.existsSync(marker()) ? fs.readFileSync(marker(), "utf8").trim().split("\n") : []);

    before(async () => {
        sshd = await startSshd();
        tls = await makeTlsMaterial();
        root = await makeTempDir("ssh-e2e-root");
        fs.mkdirSync(path.join(root, "etc/containers/registries.conf.d"), { recursive: true });
        fs.writeFileSync(path.join(root, dropIn), preexisting, { mode: 0o640 });
        original = snapshotTree(root);
        key = fs.readFileSync(sshd.privateKeyPath, "utf8");
        args = {
            target: {
                ssh: { host: sshd.host, port: sshd.port, user: sshd.user, hostKey: sshd.hostPublicKey, root },
            },
            registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
            caCertificates: [{ name: "site-ca", pem: tls.caCertPem }],
            reload: [
                {
                    command: `echo ca >> ${marker()}`,
                    after: ["usr/local/share/ca-certificates/site-ca.crt"],
                },
                { command: `echo registries >> ${marker()}`, after: [dropIn] },
            ],
        };
        t = await createProgramStack("hostssh", {
            source: sshProgram,
            config: () => ({ args: JSON.stringify(args), sshKey: { secret: key } }),
        });
    });

    after(async () => {
        await t?.dispose();
        await sshd?.stop();
        await tls?.close();
        if (root) await removeTempDir(root);
    });

    it("up writes the files over SSH, runs the reload commands, and keeps the key secret in the state", async () => {
        const r = await t.up();
        assert.equal(r.changes.create, 2, t.lastOutput());
        const files = r.outputs.files as Record<string, string>;
        assert.deepEqual(Object.keys(files).sort(), [dropIn, "usr/local/share/ca-certificates/site-ca.crt"]);
        for (const [rel, hash] of Object.entries(files)) {
            assert.equal(sha256(fs.readFileSync(path.join(root, rel))), hash, rel);
        }
        assert.equal(
            fs.readFileSync(path.join(root, "var/lib/pulumi-airgap/backup/site", dropIn), "utf8"),
            preexisting,
        );
        assert.deepEqual(reloads(), ["ca", "registries"]);
        const keyLine = key.split("\n")[1] as string;
        assert.ok(keyLine.length > 20);
        const state = t.stateBytes().toString("utf8");
        assert.ok(!state.includes(keyLine), "the private key is in the state in clear");
        assert.match(
            state,
            /"sshPrivateKey":\s*\{\s*"4dabf18193072939515e22adb298388d":\s*"1b47061264138c4ac30d75fd1eb44270",\s*"ciphertext"/,
        );
        // The host is readable in the state (only the key is secret).
        assert.match(state, new RegExp(`"target":\\s*\\{\\s*"ssh":\\s*\\{[^}]*"port":\\s*${sshd.port}`));
    });

    it("preview --expect-no-changes passes right after up, and runs no reload", async () => {
        const r = await t.preview({ expectNoChanges: true });
        assert.equal(r.changes.update ?? 0, 0);
        assert.deepEqual(reloads(), ["ca", "registries"]);
    });

    it("a file edited on the host: refresh shows drift, up restores it and runs its reload only", async () => {
        const full = path.join(root, dropIn);
        const rendered = fs.readFileSync(full, "utf8");
        fs.writeFileSync(full, rendered.replace("mirror.example:5000", "evil.example:5000"));
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        await assert.rejects(
            t.preview({ expectNoChanges: true }),
            /no changes were expected (for preview )?but changes were proposed/,
        );
        const up = await t.up();
        assert.equal(up.changes.update, 1, t.lastOutput());
        assert.equal(fs.readFileSync(full, "utf8"), rendered);
        assert.deepEqual(reloads(), ["ca", "registries", "registries"]);
        await t.preview({ expectNoChanges: true });
    });

    it("destroy restores the originals byte for byte", async () => {
        fs.rmSync(marker());
        const r = await t.destroy();
        assert.equal(r.changes.delete, 2, t.lastOutput());
        assert.deepEqual(snapshotTree(root), original);
        assert.equal(fs.readFileSync(path.join(root, dropIn), "utf8"), preexisting);
    });
});

describe("50 HostMirrorConfigs over SSH with the real Pulumi CLI", function () {
    this.timeout(900_000);
    const count = 50;

    it("up and a no-op preview, timed", async () => {
        // One sshd stands for 50 hosts: let it take as many handshakes at once as 50 hosts would.
        const sshd = await startSshd({ extraConfig: ["MaxStartups 200", "MaxSessions 200"] });
        const tls = await makeTlsMaterial();
        const roots: string[] = [];
        let t: ProgramStack | undefined;
        try {
            for (let i = 0; i < count; i++) roots.push(await makeTempDir(`ssh-scale-${i}`));
            const program = `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig } from "pulumi-airgap";

const config = new pulumi.Config();
const ssh = config.requireObject<Record<string, unknown>>("ssh");
const roots = config.requireObject<string[]>("roots");
const pem = config.require("pem");
const key = config.requireSecret("sshKey");
export const counts = roots.map((root, i) =>
    new HostMirrorConfig(\`node\${i}\`, {
        name: "site",
        target: config.get("baseline") === "local" ? { local: { root } } : { ssh: { ...ssh, root, privateKey: key } as never },
        registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
        caCertificates: [{ name: "site-ca", pem }],
        reload: [{ command: "true", after: [] }],
    }).files.apply((f) => Object.keys(f).length),
);
`;
            let baseline: Record<string, string> = {};
            t = await createProgramStack("hostssh50", {
                source: program,
                config: () => ({
                    ...baseline,
                    ssh: JSON.stringify({
                        host: sshd.host,
                        port: sshd.port,
                        user: sshd.user,
                        hostKey: sshd.hostPublicKey,
                    }),
                    roots: JSON.stringify(roots),
                    pem: tls.caCertPem,
                    sshKey: { secret: fs.readFileSync(sshd.privateKeyPath, "utf8") },
                }),
            });
            const up = await t.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 900_000 });
            assert.equal(up.code, 0, up.stdout + up.stderr);
            const preview = await t.cli(["preview", "--expect-no-changes", "--non-interactive"], {
                timeoutMs: 600_000,
            });
            assert.equal(preview.code, 0, preview.stdout + preview.stderr);
            for (const root of roots) {
                assert.ok(fs.existsSync(path.join(root, "etc/containers/registries.conf.d/site.conf")), root);
                assert.ok(fs.existsSync(path.join(root, "usr/local/share/ca-certificates/site-ca.crt")), root);
            }
            const outputs = await t.outputs();
            assert.deepEqual(
                outputs.counts,
                roots.map(() => 2),
            );
            console.log(
                `      ${count} HostMirrorConfigs over SSH (one sshd, 2 files and a reload each): ` +
                    `up ${(up.elapsedMs / 1000).toFixed(1)} s, no-op preview ${(preview.elapsedMs / 1000).toFixed(1)} s`,
            );
            const destroy = await t.cli(["destroy", "--yes", "--skip-preview", "--non-interactive"], {
                timeoutMs: 900_000,
            });
            assert.equal(destroy.code, 0, destroy.stdout + destroy.stderr);
            console.log(`      destroy ${(destroy.elapsedMs / 1000).toFixed(1)} s`);
            for (const root of roots) {
                assert.deepEqual(fs.readdirSync(root), [], root);
            }
            // The same program on local targets: what the engine and the program cost without SSH.
            baseline = { baseline: "local" };
            const localUp = await t.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 900_000 });
            assert.equal(localUp.code, 0, localUp.stdout + localUp.stderr);
            const localPreview = await t.cli(["preview", "--expect-no-changes", "--non-interactive"], {
                timeoutMs: 600_000,
            });
            assert.equal(localPreview.code, 0, localPreview.stdout + localPreview.stderr);
            console.log(
                `      the same ${count} on local targets: up ${(localUp.elapsedMs / 1000).toFixed(1)} s, ` +
                    `no-op preview ${(localPreview.elapsedMs / 1000).toFixed(1)} s`,
            );
            const localDestroy = await t.cli(["destroy", "--yes", "--skip-preview", "--non-interactive"], {
                timeoutMs: 900_000,
            });
            assert.equal(localDestroy.code, 0, localDestroy.stdout + localDestroy.stderr);
        } finally {
            await t?.dispose();
            await sshd.stop();
            await tls.close();
            for (const r of roots) await removeTempDir(r);
        }
    });
});

describe("HostMirrorConfig over SSH: a host that refuses, through the real CLI", function () {
    this.timeout(300_000);

    it("up fails naming the resource and host:port, and the state holds no resource", async () => {
        const sshd = await startSshd();
        const root = await makeTempDir("ssh-e2e-refused");
        const wrongHostKey = (await otherHostKey()).trim();
        let t: ProgramStack | undefined;
        try {
            const args = {
                target: {
                    ssh: { host: sshd.host, port: sshd.port, user: sshd.user, hostKey: wrongHostKey, root },
                },
                registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
            };
            t = await createProgramStack("hostsshbad", {
                source: sshProgram,
                config: () => ({
                    args: JSON.stringify(args),
                    sshKey: { secret: fs.readFileSync(sshd.privateKeyPath, "utf8") },
                }),
            });
            const r = await t.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 300_000 });
            const out = r.stdout + r.stderr;
            assert.notEqual(r.code, 0, out);
            assert.match(out, /HostMirrorConfig/);
            assert.match(out, new RegExp(`ssh 127\\.0\\.0\\.1:${sshd.port}: host key mismatch`));
            assert.match(out, /expected ssh-ed25519 SHA256:\S+ \(target\.ssh\.hostKey\), the host presented SHA256:/);
            assert.deepEqual(fs.readdirSync(root), []);
            const state = (await t.stateContent()) as { deployment: { resources?: { type: string }[] } };
            assert.deepEqual(
                (state.deployment.resources ?? []).filter((x) => x.type.includes("HostMirrorConfig")),
                [],
            );
        } finally {
            await t?.dispose();
            await sshd.stop();
            await removeTempDir(root);
        }
    });
});

/** A fresh ed25519 public key in known_hosts form, not the server's. */
async function otherHostKey(): Promise<string> {
    const { utils } = await import("ssh2");
    return utils.generateKeyPairSync("ed25519").public.split(/\s+/).slice(0, 2).join(" ");
}
