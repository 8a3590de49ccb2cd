import assert from "node:assert/strict";
import * as path from "node:path";
import {
    ANNOTATION_REF_NAME,
    blobPath,
    emptyLayoutIndex,
    findByRefName,
    isValidRefName,
    parseLayoutIndex,
    refNames,
    serializeLayoutIndex,
    withIndexEntry,
} from "../../../provider/oci/layout";
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from "../../../provider/oci/manifest";

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const entry = (digest: string, name?: string) =>
    name === undefined
        ? { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: 1 }
        : { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: 1, annotations: { [ANNOTATION_REF_NAME]: name } };

describe("oci/layout (index.json)", () => {
    it("validates reference names with the image-spec grammar", () => {
        for (const ok of ["v1", "app-1.0", "org/app:1", "a--b", "a@b+c", "A_b"]) {
            assert.equal(isValidRefName(ok), true, ok);
        }
        for (const bad of ["", "-a", "a-", "a b", "a//b", "a/", "a---b", "a__b"]) {
            assert.equal(isValidRefName(bad), false, bad);
        }
    });

    it("maps digests to blob paths and refuses anything that is not a digest", () => {
        assert.equal(blobPath("/l", d("a")), path.join("/l", "blobs", "sha256", "a".repeat(64)));
        assert.throws(() => blobPath("/l", "sha256:../../etc/passwd"), { code: "ERR_PARSE" });
    });

    it("adds entries: a name replaces the same name, an unnamed entry replaces the same unnamed digest", () => {
        let index = emptyLayoutIndex();
        index = withIndexEntry(index, entry(d("1"), "v1"));
        index = withIndexEntry(index, entry(d("2"), "v2"));
        index = withIndexEntry(index, entry(d("3")));
        index = withIndexEntry(index, entry(d("4"), "v1"));
        index = withIndexEntry(index, entry(d("3")));
        assert.deepEqual(index.manifests, [entry(d("2"), "v2"), entry(d("4"), "v1"), entry(d("3"))]);
        assert.deepEqual(refNames(index), ["v1", "v2"]);
        assert.deepEqual(findByRefName(index, "v1"), [entry(d("4"), "v1")]);
    });

    it("round-trips index.json keeping fields it does not know", () => {
        const text = JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            manifests: [entry(d("1"), "v1")],
            annotations: { "com.example": "kept" },
        });
        const index = parseLayoutIndex(Buffer.from(text), "index.json");
        assert.equal(serializeLayoutIndex(index).toString(), text);
        const grown = serializeLayoutIndex(withIndexEntry(index, entry(d("2"), "v2")));
        assert.deepEqual(JSON.parse(grown.toString()), {
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            manifests: [entry(d("1"), "v1"), entry(d("2"), "v2")],
            annotations: { "com.example": "kept" },
        });
    });

    it("rejects a malformed index.json naming the file", () => {
        assert.throws(() => parseLayoutIndex(Buffer.from("[]"), "/x/index.json"), {
            code: "ERR_PARSE",
            message: "/x/index.json: expected a JSON object",
        });
        assert.throws(() => parseLayoutIndex(Buffer.from('{"schemaVersion":1}'), "/x/index.json"), {
            code: "ERR_PARSE",
            message: "/x/index.json: schemaVersion must be 2, got 1",
        });
        assert.throws(
            () => parseLayoutIndex(Buffer.from('{"schemaVersion":2,"manifests":[{"digest":"x"}]}'), "/x/index.json"),
            { code: "ERR_PARSE", message: /^\/x\/index\.json: manifests\[0\]: / },
        );
    });
});
