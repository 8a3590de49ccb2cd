import assert from "node:assert/strict";
import type { PushedImage } from "../../../provider/oci/mirror";
import { checkCreatedRecords, createdRecord } from "../../../provider/oci/ownership";

const d1 = `sha256:${"1".repeat(64)}`;
const d2 = `sha256:${"2".repeat(64)}`;
const b1 = `sha256:${"b".repeat(64)}`;

describe("ImageMirror ownership records", () => {
    it("records what the copy created, and keeps what the last sync owned at the same place, however spelled", () => {
        const copied = { manifests: [d1, d2], created: { tag: false, manifests: [d2], blobs: [] }, blobs: [b1] };
        assert.deepEqual(createdRecord("docker://m:5000/org/app", "v1", copied, []), {
            v: 1,
            tag: false,
            manifests: [d2],
        });
        const previous: PushedImage[] = [
            {
                source: "quay.io/org/app:v1",
                destination: "docker://M:5000/org/app",
                tag: "v1",
                manifests: [d1],
                created: { v: 1, tag: true, manifests: [d1] },
            },
        ];
        assert.deepEqual(createdRecord("docker://m:5000/org/app", "v1", copied, previous), {
            v: 1,
            tag: true,
            manifests: [d1, d2],
        });
        // Another place owns nothing of this one; a state without records proves nothing.
        assert.deepEqual(createdRecord("docker://m:5000/org/other", "v1", copied, previous).manifests, [d2]);
        const { created: _, ...old } = previous[0]!;
        assert.deepEqual(createdRecord("docker://m:5000/org/app", "v1", copied, [old]).tag, false);
        // Layouts record blobs; archives the file.
        const layout = createdRecord(
            "oci:/srv/layout",
            "x:v1",
            { ...copied, created: { ...copied.created, blobs: [b1] } },
            [],
        );
        assert.deepEqual(layout.blobs, [b1]);
        assert.deepEqual(createdRecord("oci-archive:/srv/a.tar", "x:v1", copied, [], true), {
            v: 1,
            tag: true,
            manifests: [],
            file: true,
        });
        assert.equal(createdRecord("oci-archive:/srv/a.tar", "x:v1", copied, [], false).file, false);
    });

    it("refuses records of an unknown shape, naming each, and accepts known ones and their absence", () => {
        const base = { source: "quay.io/org/app:v1", destination: "docker://m:5000/org/app", manifests: [d1] };
        checkCreatedRecords([base, { ...base, created: { v: 1, tag: false, manifests: [] } }]);
        for (const created of [
            { v: 2, tag: true, manifests: [] },
            { v: 1, tag: "yes", manifests: [] },
            { v: 1, tag: true, manifests: ["latest"] },
            { v: 1, tag: true, manifests: [], owner: "x" },
        ]) {
            assert.throws(
                () => checkCreatedRecords([base, { ...base, created: created as never }]),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" &&
                    err.message.includes("pushed[1].created (quay.io/org/app:v1 at docker://m:5000/org/app)") &&
                    err.message.includes("nothing was removed"),
                JSON.stringify(created),
            );
        }
    });
});
