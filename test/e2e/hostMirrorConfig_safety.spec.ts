/**
 * HostMirrorConfig through the real CLI where Pulumi's own behaviour is part of the risk:
 * a replacement is created before the old resource is deleted, so a new spelling of the same
 * target must not be a replacement; two resources writing one file are refused before any step.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { HostMirrorConfigArgs } from "../../sdk";
import { createProgramStack } from "../harness/program";
import { snapshotTree } from "../harness/tree";

/** One HostMirrorConfig per entry of the `hosts` config object. */
const hostsProgram = `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig, type HostMirrorConfigArgs } from "pulumi-airgap";

const hosts = new pulumi.Config().requireObject<Record<string, HostMirrorConfigArgs>>("hosts");
export const files = Object.fromEntries(
    Object.entries(hosts).map(([name, args]) => [name, new HostMirrorConfig(name, args).files]),
);
`;

const original = "# the site's own drop-in, kept byte for byte\nunqualified-search-registries = []\n";
const dropIn = "etc/containers/registries.conf.d/site.conf";

function makeRoot(prefix: string): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.mkdirSync(path.join(root, "etc/containers/registries.conf.d"), { recursive: true });
    fs.writeFileSync(path.join(root, dropIn), original);
    return root;
}

const registries = [{ source: "quay.io", mirrors: ["mirror.example:5000"] }];

describe("HostMirrorConfig target changes with the real Pulumi CLI", function () {
    this.timeout(300_000);

    it("another spelling of the root is no change; another root replaces, and both roots end as they began", async () => {
        const roots = [makeRoot("airgap-host-place-"), makeRoot("airgap-host-place2-")];
        const before = roots.map((r) => snapshotTree(r));
        let site: HostMirrorConfigArgs = { target: { local: { root: roots[0]! } }, registries };
        const t = await createProgramStack("hostplace", {
            source: hostsProgram,
            config: () => ({ hosts: JSON.stringify({ site }) }),
        });
        try {
            await t.up();
            const managed = snapshotTree(roots[0]!);
            assert.notEqual(fs.readFileSync(path.join(roots[0]!, dropIn), "utf8"), original);

            for (const spelling of [
                `${roots[0]}/`,
                `${roots[0]}/./`,
                `${path.dirname(roots[0]!)}//${path.basename(roots[0]!)}`,
            ]) {
                site = { target: { local: { root: spelling } }, registries };
                await t.preview({ expectNoChanges: true });
                const up = await t.up();
                assert.equal(up.changes.replace ?? 0, 0, t.lastOutput());
                assert.deepEqual(snapshotTree(roots[0]!), managed, spelling);
            }

            // Another place: created there first, then the old one deleted, restoring the original.
            site = { target: { local: { root: roots[1]! } }, registries };
            const preview = await t.preview();
            assert.equal(preview.changes.replace, 1, t.lastOutput());
            const up = await t.up();
            assert.equal(up.changes.replace, 1, t.lastOutput());
            assert.deepEqual(snapshotTree(roots[0]!), before[0]);
            assert.notEqual(fs.readFileSync(path.join(roots[1]!, dropIn), "utf8"), original);

            await t.destroy();
            assert.deepEqual(
                roots.map((r) => snapshotTree(r)),
                before,
            );
        } finally {
            await t.dispose();
            for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
        }
    });

    it("two resources writing one host file are refused at preview and up, and nothing is written", async () => {
        const root = makeRoot("airgap-host-claim-");
        const before = snapshotTree(root, { identity: true });
        const plain = snapshotTree(root);
        const hosts: Record<string, HostMirrorConfigArgs> = {
            site: { target: { local: { root } }, registries },
            // Same drop-in name, the root spelled another way.
            again: { name: "site", target: { local: { root: `${root}/` } }, registries },
        };
        const t = await createProgramStack("hostclaim", {
            source: hostsProgram,
            config: () => ({ hosts: JSON.stringify(hosts) }),
        });
        try {
            const refused = async (op: string[]) => {
                const r = await t.cli([...op, "--non-interactive"], { timeoutMs: 120_000 });
                const out = r.stdout + r.stderr;
                assert.notEqual(r.code, 0, out);
                assert.match(
                    out,
                    /HostMirrorConfig "again": target: .*\/etc\/containers\/registries\.conf\.d\/site\.conf is also written by HostMirrorConfig "site"/,
                );
                assert.doesNotMatch(out, /unhandled exception|error serializing property/);
            };
            // The preview (up's too) fails before any step.
            await refused(["preview"]);
            await refused(["up", "--yes"]);
            assert.deepEqual(snapshotTree(root, { identity: true }), before);
            // Without a preview the engine may create the first before the program fails on the
            // second: the first keeps the original as its backup, and its destroy puts it back.
            await refused(["up", "--yes", "--skip-preview"]);
            const state = JSON.stringify(await t.stateContent());
            assert.doesNotMatch(state, /HostMirrorConfig::again/);
            await t.destroy();
            assert.deepEqual(snapshotTree(root), plain);
        } finally {
            await t.dispose();
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});
