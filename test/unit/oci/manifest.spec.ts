import assert from "node:assert/strict";
import { digestOf } from "../../../provider/oci/digest";
import {
    type ImageIndex,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    normalizePlatform,
    parseManifest,
    parsePlatform,
    references,
    selectPlatforms,
} from "../../../provider/oci/manifest";

const d = (c: string): string => `sha256:${c.repeat(64)}`;

const ociManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: d("c"), size: 100 },
    layers: [
        { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("1"), size: 10 },
        {
            mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            digest: d("2"),
            size: 20,
            urls: ["https://example.invalid/layer"],
        },
    ],
    annotations: { "org.opencontainers.image.version": "1.0" },
};

function index(entries: { digest: string; platform?: Record<string, string> }[], mediaType = MEDIA_TYPE_OCI_INDEX) {
    return Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType,
            manifests: entries.map((e) => ({ mediaType: MEDIA_TYPE_OCI_MANIFEST, size: 1, ...e })),
        }),
    );
}

describe("oci/manifest", () => {
    it("parses an OCI manifest from its exact bytes; the digest is that of the bytes", () => {
        // Odd spacing on purpose: the digest must be of these bytes, not of a re-serialization.
        const bytes = Buffer.from(JSON.stringify(ociManifest, null, 3));
        assert.deepEqual(parseManifest(bytes, MEDIA_TYPE_OCI_MANIFEST), {
            kind: "manifest",
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            digest: digestOf(bytes),
            size: bytes.length,
            config: ociManifest.config,
            layers: ociManifest.layers,
            annotations: ociManifest.annotations,
        });
    });

    it("lists referenced blobs without foreign layers, and children of indexes", () => {
        const m = parseManifest(Buffer.from(JSON.stringify(ociManifest)));
        assert.deepEqual(references(m), { blobs: [ociManifest.config, ociManifest.layers[0]], children: [] });
        const i = parseManifest(index([{ digest: d("a") }, { digest: d("b") }]));
        assert.deepEqual(references(i), {
            blobs: [],
            children: [
                { mediaType: MEDIA_TYPE_OCI_MANIFEST, size: 1, digest: d("a") },
                { mediaType: MEDIA_TYPE_OCI_MANIFEST, size: 1, digest: d("b") },
            ],
        });
    });

    it("takes the media type from the caller, the document, or the structure", () => {
        const { mediaType: _, ...bare } = ociManifest;
        assert.equal(parseManifest(Buffer.from(JSON.stringify(bare))).mediaType, MEDIA_TYPE_OCI_MANIFEST);
        const docker = { ...ociManifest, mediaType: MEDIA_TYPE_DOCKER_MANIFEST };
        assert.equal(parseManifest(Buffer.from(JSON.stringify(docker))).mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
        assert.equal(
            parseManifest(Buffer.from(JSON.stringify(bare)), `${MEDIA_TYPE_DOCKER_MANIFEST}; charset=utf-8`).mediaType,
            MEDIA_TYPE_DOCKER_MANIFEST,
        );
        const list = parseManifest(index([{ digest: d("a") }], MEDIA_TYPE_DOCKER_MANIFEST_LIST));
        assert.equal(list.kind, "index");
        assert.equal(list.mediaType, MEDIA_TYPE_DOCKER_MANIFEST_LIST);
    });

    it("refuses schema 1, unknown media types and mismatches, naming the media type", () => {
        const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: "x", tag: "y", fsLayers: [] }));
        assert.throws(() => parseManifest(schema1), {
            code: "ERR_PARSE",
            message:
                /Docker schema 1 manifests \(media type application\/vnd\.docker\.distribution\.manifest\.v1\+json\) are not supported/,
        });
        assert.throws(() => parseManifest(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws"), {
            code: "ERR_PARSE",
            message: /schema 1 .*v1\+prettyjws/,
        });
        const bytes = Buffer.from(JSON.stringify(ociManifest));
        assert.throws(() => parseManifest(bytes, "application/vnd.example+json"), {
            code: "ERR_PARSE",
            message: /declared media type application\/vnd\.example\+json does not match the manifest's own mediaType/,
        });
        const { mediaType: _, ...bare } = ociManifest;
        assert.throws(() => parseManifest(Buffer.from(JSON.stringify(bare)), "application/vnd.example+json"), {
            code: "ERR_PARSE",
            message: /unsupported manifest media type "application\/vnd\.example\+json"; supported: /,
        });
        assert.throws(() => parseManifest(Buffer.from("{}")), {
            code: "ERR_PARSE",
            message: /unsupported manifest media type \(none, and not recognisable\)/,
        });
    });

    it("refuses malformed documents and descriptors", () => {
        const bad = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc));
        assert.throws(() => parseManifest(Buffer.from("not json")), { code: "ERR_PARSE", message: /not valid JSON/ });
        assert.throws(() => parseManifest(bad([])), { code: "ERR_PARSE", message: /expected a JSON object/ });
        assert.throws(() => parseManifest(bad({ ...ociManifest, schemaVersion: 3 })), {
            code: "ERR_PARSE",
            message: /schemaVersion must be 2/,
        });
        assert.throws(
            () => parseManifest(bad({ ...ociManifest, layers: [{ mediaType: "x", digest: "sha256:1", size: 1 }] })),
            {
                code: "ERR_PARSE",
                message: /layers\[0\]: invalid digest "sha256:1"/,
            },
        );
        assert.throws(
            () => parseManifest(bad({ ...ociManifest, config: { mediaType: "x", digest: d("c"), size: -1 } })),
            { code: "ERR_PARSE", message: /config: "size" must be a non-negative integer, got -1/ },
        );
        assert.throws(() => parseManifest(bad({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: {} })), {
            code: "ERR_PARSE",
            message: /"manifests" must be an array/,
        });
    });

    it("normalises platforms", () => {
        assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64", variant: "" });
        assert.deepEqual(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
        assert.deepEqual(parsePlatform("linux/aarch64/8"), { os: "linux", architecture: "arm64", variant: "v8" });
        assert.deepEqual(parsePlatform("linux/armhf"), { os: "linux", architecture: "arm", variant: "v7" });
        assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "x86_64" }), {
            os: "linux",
            architecture: "amd64",
            variant: "",
        });
        assert.throws(() => parsePlatform("linux", "platforms[2]"), {
            code: "ERR_INVALID_ARGUMENT",
            argument: "platforms[2]",
            message: /^platforms\[2\]: "linux" is not "os\/architecture\[\/variant\]"/,
        });
    });

    it("selects platforms from an index, reporting the missing ones", () => {
        const parsed = parseManifest(
            index([
                { digest: d("1"), platform: { os: "linux", architecture: "amd64" } },
                { digest: d("2"), platform: { os: "linux", architecture: "arm64", variant: "v8" } },
                { digest: d("3"), platform: { os: "linux", architecture: "arm", variant: "v7" } },
                { digest: d("4"), platform: { os: "unknown", architecture: "unknown" } },
                { digest: d("5") },
            ]),
        ) as ImageIndex;
        const { selected, missing } = selectPlatforms(parsed, [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm64",
            "linux/arm",
            "linux/s390x",
            "windows/amd64",
        ]);
        assert.deepEqual(
            selected.map((s) => s.digest),
            [d("1"), d("2"), d("3")],
        );
        assert.deepEqual(missing, ["linux/s390x", "windows/amd64"]);
        assert.throws(() => selectPlatforms(parsed, ["linux/amd64", "bad"]), {
            code: "ERR_INVALID_ARGUMENT",
            argument: "platforms[1]",
        });
    });
});
