/**
 * A host file's backup is the only copy of the original: a second resource writing the same file
 * (same name on the same root, or a resource whose state was lost) is refused, and nothing of the
 * first's is touched.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAirgapError } from "../../../provider/errors";
import { operations } from "../../../provider/host/operations";
import type { HostMirrorSpec } from "../../../provider/host/types";
import { makeTempDir, removeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

describe("HostMirrorConfig ownership of host files", () => {
    let root: string;
    const original = "unqualified-search-registries = []\n# the site's own, kept byte for byte\n";
    const dropIn = "etc/containers/registries.conf.d/site.conf";
    const spec = (r: string, mirror = "mirror.example:5000"): HostMirrorSpec => ({
        name: "site",
        target: { local: { root: r } },
        registries: [{ source: "quay.io", mirrors: [mirror] }],
    });

    beforeEach(async () => {
        root = await makeTempDir("host-owner");
        fs.mkdirSync(path.join(root, "etc/containers/registries.conf.d"), { recursive: true });
        fs.writeFileSync(path.join(root, dropIn), original);
    });
    afterEach(() => removeTempDir(root));

    it("a second create of the same file (another spelling of the root) is refused; the first's destroy restores the original", async () => {
        const first = await operations.create(spec(root));
        const managed = snapshotTree(root);
        await assert.rejects(operations.create(spec(`${root}/./`, "other.example:5000")), (err: Error) => {
            assert.ok(isAirgapError(err) && err.code === "ERR_CONFLICT", String(err));
            assert.match(
                err.message,
                /etc\/containers\/registries\.conf\.d\/site\.conf is already managed: .*var\/lib\/pulumi-airgap\/backup\/site\/etc\/containers\/registries\.conf\.d\/site\.conf holds its original/,
            );
            return true;
        });
        // Neither the managed file nor the backup of the original moved.
        assert.deepEqual(snapshotTree(root), managed);
        await operations.delete("id", first.outs);
        assert.equal(fs.readFileSync(path.join(root, dropIn), "utf8"), original);
        assert.ok(!fs.existsSync(path.join(root, "var")));
    });

    it("a backup left by a resource whose state was lost is never overwritten", async () => {
        const backup = path.join(root, "var/lib/pulumi-airgap/backup/site", dropIn);
        fs.mkdirSync(path.dirname(backup), { recursive: true });
        fs.writeFileSync(backup, original);
        fs.writeFileSync(path.join(root, dropIn), "# written by a run whose state is gone\n");
        const before = snapshotTree(root);
        await assert.rejects(operations.create(spec(root)), /already managed: .* holds its original/);
        assert.deepEqual(snapshotTree(root), before);
    });
});
