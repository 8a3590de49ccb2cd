import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as openpgp from "openpgp";
import type { HostMirrorConfigArgs } from "../../sdk";
import { makeTlsMaterial, type TlsMaterial } from "../harness/fixtures/tls";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { snapshotTree } from "../harness/tree";

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** A deployment-repository program: the resource's arguments come from stack config. */
const hostProgram = `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig, type HostMirrorConfigArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const host = new HostMirrorConfig("site", config.requireObject<HostMirrorConfigArgs>("args"));
export const files = host.files;
`;

describe("HostMirrorConfig with the real Pulumi CLI, from a program directory", function () {
    this.timeout(180_000);

    let root: string;
    let tls: TlsMaterial;
    let armoredKey: string;
    let args: HostMirrorConfigArgs;
    let t: ProgramStack;
    let original: Record<string, string>;
    const preexistingCa = "-----BEGIN CERTIFICATE-----\nnot ours, kept byte for byte\n-----END CERTIFICATE-----\r\n";

    const dropIn = () => path.join(root, "etc/containers/registries.conf.d/site.conf");
    const read = (rel: string) => fs.readFileSync(path.join(root, rel), "utf8");

    before(async () => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-host-root-"));
        // A file we will replace (and must restore byte for byte) and one we must not touch.
        fs.mkdirSync(path.join(root, "usr/local/share/ca-certificates"), { recursive: true });
        fs.writeFileSync(path.join(root, "usr/local/share/ca-certificates/site-ca.crt"), preexistingCa, {
            mode: 0o600,
        });
        fs.mkdirSync(path.join(root, "etc/apt/sources.list.d"), { recursive: true });
        fs.writeFileSync(path.join(root, "etc/apt/sources.list.d/debian.sources"), "Types: deb\n");
        original = snapshotTree(root);

        tls = await makeTlsMaterial();
        const { publicKey } = await openpgp.generateKey({
            type: "curve25519",
            userIDs: [{ name: "Mirror", email: "mirror@example.invalid" }],
            format: "armored",
        });
        armoredKey = publicKey;
        args = {
            target: { local: { root } },
            registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
            caCertificates: [{ name: "site-ca", pem: tls.caCertPem }],
            apt: [
                {
                    name: "site-debian",
                    uris: ["http://mirror.example/debian"],
                    suites: ["bookworm"],
                    components: ["main"],
                    signedBy: armoredKey,
                },
            ],
        };
        t = await createProgramStack("hostcfg", {
            source: hostProgram,
            config: () => ({ args: JSON.stringify(args) }),
        });
    });

    after(async () => {
        await t?.dispose();
        await tls?.close();
        fs.rmSync(root, { recursive: true, force: true });
    });

    it("up writes every file and records its hash", async () => {
        const r = await t.up();
        assert.equal(r.changes.create, 2, t.lastOutput());
        const files = r.outputs.files as Record<string, string>;
        assert.deepEqual(Object.keys(files).sort(), [
            "etc/apt/keyrings/site-debian.asc",
            "etc/apt/sources.list.d/site-debian.sources",
            "etc/containers/registries.conf.d/site.conf",
            "usr/local/share/ca-certificates/site-ca.crt",
        ]);
        for (const [rel, hash] of Object.entries(files)) {
            assert.equal(sha256(fs.readFileSync(path.join(root, rel))), hash, rel);
        }
        assert.match(
            read("etc/containers/registries.conf.d/site.conf"),
            /\[\[registry\.mirror\]\]\nlocation = "mirror\.example:5000"/,
        );
        assert.equal(read("usr/local/share/ca-certificates/site-ca.crt"), `${tls.caCertPem.trim()}\n`);
        assert.match(
            read("etc/apt/sources.list.d/site-debian.sources"),
            /^Signed-By: \/etc\/apt\/keyrings\/site-debian\.asc$/m,
        );
        // The file that was not ours is untouched.
        assert.equal(read("etc/apt/sources.list.d/debian.sources"), "Types: deb\n");
    });

    it("preview --expect-no-changes passes right after up", async () => {
        const r = await t.preview({ expectNoChanges: true });
        assert.equal(r.changes.update ?? 0, 0);
    });

    it("refresh reports a file edited by hand, and up restores it", async () => {
        const rendered = fs.readFileSync(dropIn(), "utf8");
        fs.writeFileSync(dropIn(), rendered.replace("mirror.example:5000", "evil.example:5000"));
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        const preview = await t.preview();
        assert.equal(preview.changes.update, 1, t.lastOutput());
        await assert.rejects(
            t.preview({ expectNoChanges: true }),
            /no changes were expected (for preview )?but changes were proposed/,
        );
        const up = await t.up();
        assert.equal(up.changes.update, 1, t.lastOutput());
        assert.equal(fs.readFileSync(dropIn(), "utf8"), rendered);
        await t.preview({ expectNoChanges: true });
    });

    it("refresh reports a file removed by hand, and up puts it back", async () => {
        const keyring = path.join(root, "etc/apt/keyrings/site-debian.asc");
        const content = fs.readFileSync(keyring);
        fs.rmSync(keyring);
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        await t.up();
        assert.deepEqual(fs.readFileSync(keyring), content);
    });

    it("a changed input shows in preview and up applies it", async () => {
        args.registries = [{ source: "quay.io", mirrors: ["mirror.example:5000", "mirror2.example:5000"] }];
        const preview = await t.preview();
        const step = preview.steps.find((s) => s.urn.endsWith("::site"));
        assert.equal(step?.op, "update", t.lastOutput());
        // What `pulumi preview --diff` shows the user: the property and the element added.
        assert.match(t.lastOutput(), /~ registries/);
        assert.match(t.lastOutput(), /\+ \[1\]: "mirror2\.example:5000"/);
        await t.up();
        assert.match(fs.readFileSync(dropIn(), "utf8"), /location = "mirror2\.example:5000"/);
        await t.preview({ expectNoChanges: true });
    });

    it("destroy leaves the root exactly as it was", async () => {
        const r = await t.destroy();
        assert.equal(r.changes.delete, 2, t.lastOutput());
        assert.deepEqual(snapshotTree(root), original);
        assert.equal(read("usr/local/share/ca-certificates/site-ca.crt"), preexistingCa);
    });
});

describe("HostMirrorConfig bad input through the real Pulumi CLI", function () {
    this.timeout(180_000);

    it("fails preview and up fast with the argument named, and writes nothing", async () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-host-bad-"));
        const args: HostMirrorConfigArgs = {
            target: { local: { root } },
            registries: [{ source: "quay.io", mirrors: ["https://mirror.example:5000"] }],
        };
        const t = await createProgramStack("hostbad", {
            source: hostProgram,
            config: () => ({ args: JSON.stringify(args) }),
        });
        try {
            for (const op of [["preview"], ["up", "--yes"]]) {
                const r = await t.cli([...op, "--non-interactive"]);
                assert.notEqual(r.code, 0, t.lastOutput());
                assert.ok(r.elapsedMs < 60_000, `${op[0]} took ${r.elapsedMs} ms`);
                const out = r.stdout + r.stderr;
                assert.match(out, /registries\[0\]\.mirrors\[0\]/);
                assert.match(out, /has a scheme/);
                assert.doesNotMatch(out, /unhandled exception|error serializing property/);
            }
            assert.deepEqual(fs.readdirSync(root), []);
        } finally {
            await t.dispose();
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("with its outputs exported and fed into another host, a bad argument fails up fast and changes neither host", async () => {
        const roots = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), "airgap-host-chain-")));
        const good: HostMirrorConfigArgs = {
            target: { local: { root: roots[0]! } },
            registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
        };
        let args = good;
        const t = await createProgramStack("hostchain", {
            source: `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig, type HostMirrorConfigArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const site = new HostMirrorConfig("site", config.requireObject<HostMirrorConfigArgs>("args"));
// A second host configured only once the first one's files are known.
const second = new HostMirrorConfig("second", {
    target: { local: { root: config.require("secondRoot") } },
    registries: site.files.apply((files) => [{ source: "docker.io", mirrors: [\`mirror.example:5000/\${Object.keys(files).length}\`] }]),
});
export const files = site.files;
export const secondFiles = second.files;
`,
            config: () => ({ args: JSON.stringify(args), secondRoot: roots[1]! }),
        });
        try {
            const up = await t.up();
            assert.equal(Object.keys(up.outputs.secondFiles as object).length, 1, t.lastOutput());
            // The hosts' state. (The stack and the default provider record the new config whatever
            // the outcome: they hold it as their inputs.)
            const resourcesState = async () =>
                (
                    (await t.stateContent()) as { deployment: { resources: { type: string }[] } }
                ).deployment.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"));
            const before = {
                state: await resourcesState(),
                trees: roots.map((r) => snapshotTree(r, { identity: true })),
            };
            args = { ...good, registries: [{ source: "quay.io", mirrors: ["https://mirror.example:5000"] }] };
            for (const op of [["preview"], ["up", "--yes", "--skip-preview"]]) {
                const r = await t.cli([...op, "--non-interactive"], { timeoutMs: 120_000 });
                const out = r.stdout + r.stderr;
                assert.notEqual(r.code, 0, out);
                assert.ok(r.elapsedMs < 60_000, `${op[0]} took ${r.elapsedMs} ms`);
                assert.match(out, /HostMirrorConfig resource 'site': property registries\[0\]\.mirrors\[0\]/);
                assert.doesNotMatch(out, /unhandled exception|error serializing property/);
            }
            assert.equal(before.state.length, 2, "two hosts");
            assert.deepEqual(await resourcesState(), before.state, "the state changed");
            assert.deepEqual(
                roots.map((r) => snapshotTree(r, { identity: true })),
                before.trees,
            );
            args = good;
            await t.destroy();
        } finally {
            await t.dispose();
            for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
        }
    });
});
