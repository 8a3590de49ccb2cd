import assert from "node:assert/strict";
import { createWriteStream, promises as fsp } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { readBodyCapped, readFileCapped } from "../../../provider/http/body";
import { copyImage, distinctChildren, MAX_INDEX_CHILDREN } from "../../../provider/oci/copy";
import { digestOf } from "../../../provider/oci/digest";
import { MAX_LAYOUT_INDEX_SIZE, readLayout } from "../../../provider/oci/layout";
import { readArchiveIndex } from "../../../provider/oci/lock";
import {
    type Descriptor,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
} from "../../../provider/oci/manifest";
import type { ImageDestination, ImageSource, ManifestBlob } from "../../../provider/oci/types";
import { withCode } from "../../harness/expect";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const MiB = 1024 * 1024;

/** An endless body that counts the chunks it was asked for and whether it was destroyed. */
function endless(chunkSize = 64 * 1024): Readable & { pulled: number } {
    const chunk = Buffer.alloc(chunkSize, 0x61);
    const stream = new Readable({
        read() {
            (stream as Readable & { pulled: number }).pulled++;
            this.push(chunk);
        },
    }) as Readable & { pulled: number };
    stream.pulled = 0;
    return stream;
}

function blob(text: string): { bytes: Buffer; digest: string; size: number } {
    const bytes = Buffer.from(text);
    return { bytes, digest: digestOf(bytes), size: bytes.length };
}

/** One single-platform image (config, one layer, manifest) with `seed` making it distinct. */
function image(seed: string) {
    const config = blob(`{"architecture":"amd64","os":"linux","seed":"${seed}"}`);
    const layer = blob(`layer ${seed}`);
    const manifest = blob(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: config.digest, size: config.size },
            layers: [{ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: layer.digest, size: layer.size }],
        }),
    );
    return { config, layer, manifest };
}

function indexOf(children: { digest: string; size: number }[]) {
    return blob(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            manifests: children.map((c) => ({
                mediaType: MEDIA_TYPE_OCI_MANIFEST,
                digest: c.digest,
                size: c.size,
                platform: { os: "linux", architecture: "amd64" },
            })),
        }),
    );
}

/** A source in memory that counts manifest reads and the most of them at the same time. */
class MemorySource implements ImageSource {
    readonly location = { transport: "oci", path: "/memory/src", reference: "app" } as const;
    readonly manifestGets = new Map<string, number>();
    active = 0;
    maxActive = 0;

    constructor(
        private readonly top: ManifestBlob,
        private readonly manifests: Map<string, ManifestBlob>,
        private readonly blobs: Map<string, Buffer>,
    ) {}

    async getManifest(digest?: string): Promise<ManifestBlob> {
        const want = digest ?? this.top.digest;
        this.manifestGets.set(want, (this.manifestGets.get(want) ?? 0) + 1);
        this.active++;
        this.maxActive = Math.max(this.maxActive, this.active);
        try {
            await new Promise((r) => setTimeout(r, 2));
            const m = want === this.top.digest ? this.top : this.manifests.get(want);
            assert.ok(m !== undefined, `no manifest ${want}`);
            return m;
        } finally {
            this.active--;
        }
    }
    async getBlob(digest: string) {
        const bytes = this.blobs.get(digest)!;
        return { stream: Readable.from([bytes]), size: bytes.length };
    }
    async hasBlob(digest: string) {
        return this.blobs.has(digest);
    }
    async listTags() {
        return ["app"];
    }
    async close() {}
}

class MemoryDestination implements ImageDestination {
    readonly location = { transport: "oci", path: "/memory/dest", reference: "app" } as const;
    readonly blobs = new Set<string>();
    readonly manifestPuts: string[] = [];

    async hasBlob(digest: string) {
        return this.blobs.has(digest);
    }
    async putBlob(stream: Readable, expected: { digest: string }) {
        for await (const _ of stream) {
            // consumed
        }
        this.blobs.add(expected.digest);
    }
    async putManifest(bytes: Buffer) {
        const digest = digestOf(bytes);
        this.manifestPuts.push(digest);
        return digest;
    }
    async listTags() {
        return [];
    }
    async commit() {}
    async close() {}
}

function fixture(children: ReturnType<typeof image>[], listing: { digest: string; size: number }[]) {
    const index = indexOf(listing);
    const manifests = new Map<string, ManifestBlob>();
    const blobs = new Map<string, Buffer>();
    for (const c of children) {
        manifests.set(c.manifest.digest, {
            bytes: c.manifest.bytes,
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            digest: c.manifest.digest,
        });
        blobs.set(c.config.digest, c.config.bytes);
        blobs.set(c.layer.digest, c.layer.bytes);
    }
    const top = { bytes: index.bytes, mediaType: MEDIA_TYPE_OCI_INDEX, digest: index.digest };
    return { index, source: new MemorySource(top, manifests, blobs), destination: new MemoryDestination() };
}

describe("hostile or huge image input", () => {
    after(cleanupAll);

    describe("readBodyCapped", () => {
        it("refuses a body past the limit, naming it and the limit, and cancels the stream", async () => {
            const body = endless();
            await assert.rejects(
                readBodyCapped(body, 1 * MiB, "token for repository:app:pull"),
                withCode("ERR_TOO_LARGE", /^token for repository:app:pull is larger than the 1 MiB allowed$/),
            );
            assert.ok(body.destroyed, "the body is destroyed");
            // 1 MiB in 64 KiB chunks, plus what the stream buffered ahead: nowhere near unbounded.
            assert.ok(body.pulled < 40, `read ${body.pulled} chunks`);
        });

        it("refuses a declared length past the limit before reading a byte", async () => {
            const body = endless();
            await assert.rejects(
                readBodyCapped(body, 4 * MiB, "manifest x", { declaredLength: 100 * MiB }),
                withCode("ERR_TOO_LARGE", /^manifest x is 104857600 bytes, more than the 4 MiB allowed$/),
            );
            assert.equal(body.pulled, 0);
            assert.ok(body.destroyed);
        });

        it("keeps the first bytes of a body in truncate mode", async () => {
            const body = endless(1000);
            const bytes = await readBodyCapped(body, 2500, "error body", { overflow: "truncate" });
            assert.equal(bytes.length, 2500);
            assert.ok(body.destroyed);
        });

        it("returns a body within the limit as it is", async () => {
            const bytes = await readBodyCapped(Readable.from([Buffer.from("ab"), "cd", new Uint8Array([101])]), 5, "x");
            assert.equal(bytes.toString(), "abcde");
        });

        it("refuses a file past the limit without reading it whole", async () => {
            const dir = await makeTempDir("capped");
            const file = join(dir, "big");
            await fsp.writeFile(file, "");
            await fsp.truncate(file, 64 * MiB);
            await assert.rejects(
                readFileCapped(file, 1 * MiB, file),
                withCode("ERR_TOO_LARGE", /big is larger than the 1 MiB allowed/),
            );
        });
    });

    describe("index children", () => {
        it("lists a child listed 5000 times once", () => {
            const child = image("one").manifest;
            const desc: Descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: child.digest, size: child.size };
            assert.deepEqual(distinctChildren(Array(5000).fill(desc), "index x"), [desc]);
        });

        it("refuses more distinct children than the limit, naming the index", () => {
            const children = Array.from({ length: MAX_INDEX_CHILDREN + 1 }, (_, i) => ({
                mediaType: MEDIA_TYPE_OCI_MANIFEST,
                digest: digestOf(Buffer.from(String(i))),
                size: 1,
            }));
            assert.equal(distinctChildren(children.slice(0, MAX_INDEX_CHILDREN), "i").length, MAX_INDEX_CHILDREN);
            assert.throws(
                () => distinctChildren(children, "index sha256:abc of docker://reg.test/app:1"),
                withCode(
                    "ERR_TOO_LARGE",
                    /index sha256:abc of docker:\/\/reg\.test\/app:1 lists more distinct child manifests than the 1024 allowed/,
                ),
            );
        });

        it("refuses one child listed with two sizes", () => {
            const digest = digestOf(Buffer.from("x"));
            assert.throws(
                () =>
                    distinctChildren(
                        [
                            { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: 1 },
                            { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: 2 },
                        ],
                        "index y",
                    ),
                withCode(
                    "ERR_VERIFICATION",
                    /index y lists manifest sha256:[0-9a-f]{64} with two sizes \(1 and 2 bytes\)/,
                ),
            );
        });

        it("copyImage fetches and puts a child listed 5000 times once", async () => {
            const child = image("one");
            const { index, source, destination } = fixture([child], Array(5000).fill(child.manifest));
            const result = await copyImage({ source, destination });
            assert.equal(result.sourceDigest, index.digest);
            assert.equal(source.manifestGets.get(child.manifest.digest), 1);
            assert.deepEqual(destination.manifestPuts, [child.manifest.digest, index.digest]);
            assert.deepEqual(result.manifests, [child.manifest.digest, index.digest]);
        });

        it("copyImage fetches at most 4 children at a time", async () => {
            const children = Array.from({ length: 40 }, (_, i) => image(String(i)));
            const { source, destination } = fixture(
                children,
                children.map((c) => c.manifest),
            );
            await copyImage({ source, destination });
            assert.equal(destination.manifestPuts.length, 41);
            assert.ok(source.maxActive <= 4, `${source.maxActive} manifests were read at the same time`);
        });

        it("copyImage refuses an index of too many distinct children before fetching any", async () => {
            const listing = Array.from({ length: MAX_INDEX_CHILDREN + 1 }, (_, i) => blob(`child ${i}`));
            const { index, source, destination } = fixture([], listing);
            await assert.rejects(
                copyImage({ source, destination }),
                withCode(
                    "ERR_TOO_LARGE",
                    new RegExp(
                        `index ${index.digest} of oci:/memory/src:app lists more distinct child manifests than the 1024 allowed`,
                    ),
                ),
            );
            assert.equal(source.manifestGets.size, 1, "only the index was read");
            assert.deepEqual(destination.manifestPuts, []);
        });
    });

    describe("index.json", () => {
        it("of a layout: larger than the limit is refused, naming the file", async () => {
            const dir = await makeTempDir("bigindex");
            await fsp.writeFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
            await fsp.writeFile(join(dir, "index.json"), "");
            await fsp.truncate(join(dir, "index.json"), MAX_LAYOUT_INDEX_SIZE + 1);
            await assert.rejects(
                readLayout(dir),
                withCode("ERR_TOO_LARGE", /index\.json is larger than the 32 MiB allowed/),
            );
        });

        it("of a layout: an oversized oci-layout file is refused", async () => {
            const dir = await makeTempDir("biglayout");
            await fsp.writeFile(join(dir, "oci-layout"), "");
            await fsp.truncate(join(dir, "oci-layout"), 10 * MiB);
            await assert.rejects(
                readLayout(dir),
                withCode("ERR_TOO_LARGE", /oci-layout is larger than the 64 KiB allowed/),
            );
        });

        it("inside an OCI archive: larger than the limit is refused by its header, naming the archive", async () => {
            const dir = await makeTempDir("bigarchive");
            const file = join(dir, "images.tar");
            const pack = tar.pack();
            const size = MAX_LAYOUT_INDEX_SIZE + 1;
            pack.entry({ name: "oci-layout" }, '{"imageLayoutVersion":"1.0.0"}');
            pack.entry({ name: "index.json", size }, Buffer.alloc(size, 0x20));
            pack.finalize();
            const written = pipeline(pack, createWriteStream(file));
            await written;
            await assert.rejects(
                readArchiveIndex(file),
                withCode(
                    "ERR_TOO_LARGE",
                    /OCI archive .*images\.tar: index\.json is 33554433 bytes, more than the 32 MiB allowed/,
                ),
            );
        });
    });
});
