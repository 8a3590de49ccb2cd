import assert from "node:assert/strict";
import { hasCode } from "../../../provider/errors";
import {
    checkStorageImages,
    parseStorageLocation,
    registryStoragePaths,
    type StorageImage,
    type StorageSource,
} from "../../../provider/vm/registry_storage";

const D = `sha256:${"ab".repeat(32)}`;
const E = `sha256:${"cd".repeat(32)}`;

function refusal(images: unknown, argument: string, pattern: RegExp): void {
    assert.throws(
        () => checkStorageImages(images as StorageImage[]),
        (err: Error & { argument?: string }) => {
            assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"), err.message);
            assert.equal(err.argument, argument);
            assert.ok(err.message.startsWith(`${argument}: `), err.message);
            assert.match(err.message, pattern);
            return true;
        },
    );
}

describe("vm/registry_storage: locations and inputs", () => {
    it("reads ImageMirror's mirrored forms and transport references", () => {
        const cases: [string, StorageSource][] = [
            [
                `127.0.0.1:5000/quay.io/foo/bar@${D}`,
                {
                    location: {
                        transport: "docker",
                        reference: { domain: "127.0.0.1:5000", path: "quay.io/foo/bar", digest: D },
                    },
                    digest: D,
                    key: "docker://127.0.0.1:5000/quay.io/foo/bar",
                },
            ],
            [
                `docker://mirror.local/site/app:1.0@${D}`,
                {
                    location: {
                        transport: "docker",
                        reference: { domain: "mirror.local", path: "site/app", tag: "1.0", digest: D },
                    },
                    digest: D,
                    key: "docker://mirror.local/site/app",
                },
            ],
            [
                `oci:/srv/layout:quay.io/foo/bar:1.0@${D}`,
                {
                    location: { transport: "oci", path: "/srv/layout", reference: "quay.io/foo/bar:1.0" },
                    digest: D,
                    key: "oci:/srv/layout",
                },
            ],
            [
                `oci-archive:/srv/x.tar:tag@${D}`,
                {
                    location: { transport: "oci-archive", path: "/srv/x.tar", reference: "tag" },
                    digest: D,
                    key: "oci-archive:/srv/x.tar",
                },
            ],
            [
                "oci:/srv/layout:app-1",
                { location: { transport: "oci", path: "/srv/layout", reference: "app-1" }, key: "oci:/srv/layout" },
            ],
        ];
        for (const [input, want] of cases) {
            assert.deepEqual(parseStorageLocation(input), want, input);
        }
    });

    it("lays files out as distribution's filesystem driver does", () => {
        const hex = D.slice("sha256:".length);
        const p = registryStoragePaths;
        assert.equal(p.blobData("/r", D), `/r/docker/registry/v2/blobs/sha256/ab/${hex}/data`);
        assert.equal(
            p.layerLink("/r", "quay.io/a/b", D),
            `/r/docker/registry/v2/repositories/quay.io/a/b/_layers/sha256/${hex}/link`,
        );
        assert.equal(
            p.revisionLink("/r", "a", D),
            `/r/docker/registry/v2/repositories/a/_manifests/revisions/sha256/${hex}/link`,
        );
        assert.equal(
            p.tagCurrentLink("/r", "a", "v1"),
            "/r/docker/registry/v2/repositories/a/_manifests/tags/v1/current/link",
        );
        assert.equal(
            p.tagIndexLink("/r", "a", "v1", D),
            `/r/docker/registry/v2/repositories/a/_manifests/tags/v1/index/sha256/${hex}/link`,
        );
    });

    it("accepts good inputs, one tag given twice with one digest included", () => {
        checkStorageImages([]);
        checkStorageImages([
            { location: `oci:/l:a@${D}`, repository: "quay.io/foo/bar", tag: "1.0", digest: D },
            { location: `127.0.0.1:5000/x/y@${D}`, repository: "quay.io/foo/bar", tag: "1.0", digest: D },
            { location: "oci:/l:a", repository: "quay.io/foo/baz", digest: E },
        ]);
    });

    it("refuses bad inputs naming the argument", () => {
        const ok = { location: `oci:/l:a@${D}`, repository: "quay.io/foo/bar", tag: "1.0", digest: D };
        refusal("nope", "images", /must be a list/);
        refusal([ok, null], "images[1]", /must be an object/);
        refusal([{ ...ok, location: "not a location!" }], "images[0].location", /not a registry reference/);
        refusal([{ ...ok, location: "dir:/x" }], "images[0].location", /"dir" is not a known transport/);
        refusal([{ ...ok, location: "oci:" }], "images[0].location", /path is empty/);
        refusal([{ ...ok, location: "" }], "images[0].location", /non-empty/);
        refusal(
            [{ ...ok, location: `oci:/l:a@${E}` }],
            "images[0].location",
            /names digest sha256:cdcd.*is sha256:abab/,
        );
        refusal([{ ...ok, digest: "sha256:12" }], "images[0].digest", /not a digest/);
        refusal([{ ...ok, repository: "Quay.io/Foo" }], "images[0].repository", /not a repository name/);
        refusal([{ ...ok, repository: "127.0.0.1:5000/foo" }], "images[0].repository", /not a repository name/);
        refusal([{ ...ok, repository: "a//b" }], "images[0].repository", /not a repository name/);
        refusal([{ ...ok, repository: `a/${"b".repeat(255)}` }], "images[0].repository", /at most 255/);
        refusal([{ ...ok, tag: ".hidden" }], "images[0].tag", /not a valid tag/);
        refusal(
            [ok, { ...ok, location: `oci:/l:b@${E}`, digest: E }],
            "images[1].tag",
            /quay\.io\/foo\/bar:1\.0 is given two digests/,
        );
    });
});
