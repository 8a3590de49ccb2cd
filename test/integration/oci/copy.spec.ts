import assert from "node:assert/strict";
import { join } from "node:path";
import { type CopyProgress, copyImage, copyImages } from "../../../provider/oci/copy";
import { digestOf } from "../../../provider/oci/digest";
import { parseManifest } from "../../../provider/oci/manifest";
import { openImageDestination, openImageSource } from "../../../provider/oci/open";
import type { RegistryOptions } from "../../../provider/oci/registry_transport";
import type { ImageDestination, ImageSource } from "../../../provider/oci/types";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "./registry_helpers";

const HTTP: RegistryOptions = { insecure: "http", retry: { baseDelayMs: 10 } };
const open = { registry: HTTP };

/** Every manifest digest below `ref` (the top, and the children of an index), as skopeo sees them. */
async function digestsAt(ref: string): Promise<string[]> {
    const raw = await skopeoRaw(ref);
    const parsed = parseManifest(raw);
    return [digestOf(raw), ...(parsed.kind === "index" ? parsed.manifests.map((m) => m.digest) : [])];
}

async function withPair<T>(
    from: string,
    to: string,
    body: (src: ImageSource, dest: ImageDestination) => Promise<T>,
): Promise<T> {
    const src = await openImageSource(from, open);
    const dest = await openImageDestination(to, open);
    try {
        const result = await body(src, dest);
        await dest.commit();
        return result;
    } finally {
        await src.close();
        await dest.close();
    }
}

describe("copy (registry to registry and through an archive, judged by skopeo)", function () {
    this.timeout(240_000);
    let source: RegistryServer;
    let mirror: RegistryServer;
    let site: RegistryServer;
    /** Source repositories filled by skopeo: a multi-arch OCI index, a Docker v2s2 image, an OCI image. */
    const images = ["multi:m1", "plain:v1", "ocitype:v1"];

    before(async () => {
        [source, mirror, site] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
        const multi = await multiArchLayout("m1");
        await skopeo([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            multi.reference,
            `docker://${source.host}/src/multi:m1`,
        ]);
        await skopeo([
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            await singleLayout("v1", 3000, 11),
            `docker://${source.host}/src/plain:v1`,
        ]);
        await skopeo([
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            await singleLayout("v1", 5000, 12),
            `docker://${source.host}/src/ocitype:v1`,
        ]);
    });
    after(async () => {
        await Promise.all([source?.stop(), mirror?.stop(), site?.stop()]);
        await cleanupAll();
    });

    it("copies an index, a Docker image and an OCI image with every digest preserved", async () => {
        const mediaTypes: string[] = [];
        for (const image of images) {
            const from = `docker://${source.host}/src/${image}`;
            const to = `docker://${mirror.host}/mirror/${image}`;
            const result = await withPair(from, to, (src, dest) =>
                copyImage({ source: src, destination: dest, concurrency: 3 }),
            );
            const expected = await digestsAt(from);
            assert.deepEqual(await digestsAt(to), expected);
            assert.equal(result.sourceDigest, expected[0]);
            assert.equal(result.indexCopied, true);
            assert.equal(result.destinationReference, `${mirror.host}/mirror/${image.split(":")[0]}@${expected[0]}`);
            assert.ok(result.bytes > 0);
            assert.ok(result.blobsCopied > 0);
            mediaTypes.push(result.mediaType);
        }
        assert.deepEqual(mediaTypes, [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ]);
        // the shared base layer of the index was copied once
        const multi = await withPair(
            `docker://${source.host}/src/multi:m1`,
            `docker://${mirror.host}/again/multi:m1`,
            (src, dest) => copyImage({ source: src, destination: dest }),
        );
        // five distinct blobs (two configs, two per-platform layers, the shared layer), six references
        assert.equal(multi.blobsCopied, 5);
        assert.equal(multi.blobsSkipped, 1);
        assert.deepEqual(multi.manifests.length, 3);

        // skopeo reads what we wrote
        const out = await makeTempDir("from-mirror");
        await skopeo([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            `docker://${mirror.host}/mirror/multi:m1`,
            `oci:${join(out, "layout")}:m1`,
        ]);
        assert.deepEqual(
            await digestsAt(`oci:${join(out, "layout")}:m1`),
            await digestsAt(`docker://${source.host}/src/multi:m1`),
        );
    });

    it("moves no blob bytes the second time", async () => {
        for (const image of images) {
            const result = await withPair(
                `docker://${source.host}/src/${image}`,
                `docker://${mirror.host}/mirror/${image}`,
                (src, dest) => copyImage({ source: src, destination: dest }),
            );
            assert.equal(result.bytes, 0, image);
            assert.equal(result.blobsCopied, 0, image);
            assert.ok(result.blobsSkipped > 0, image);
        }
    });

    it("carries images across the gap in an oci-archive and keeps every digest", async () => {
        const dir = await makeTempDir("gap");
        const archive = join(dir, "images.tar");
        const dest = await openImageDestination(`oci-archive:${archive}`, open);
        try {
            for (const image of images) {
                const src = await openImageSource(`docker://${source.host}/src/${image}`, open);
                try {
                    await copyImage({ source: src, destination: dest, tag: image.replace(":", "-") });
                } finally {
                    await src.close();
                }
            }
            await dest.commit();
        } finally {
            await dest.close();
        }
        for (const image of images) {
            const name = image.replace(":", "-");
            const to = `docker://${site.host}/site/${image}`;
            await withPair(`oci-archive:${archive}:${name}`, to, (src, d) =>
                copyImage({ source: src, destination: d }),
            );
            assert.deepEqual(await digestsAt(to), await digestsAt(`docker://${source.host}/src/${image}`), image);
            // skopeo 1.9 only looks up OCI media types in a layout's index.json, not Docker ones.
            if (!image.startsWith("plain")) {
                const viaSkopeo = await skopeoRaw(`oci-archive:${archive}:${name}`, []);
                assert.equal(digestOf(viaSkopeo), (await digestsAt(to))[0]);
            }
        }
    });

    it("copies a platform subset without inventing an index", async () => {
        const from = `docker://${source.host}/src/multi:m1`;
        const [indexDigest, amd, arm] = await digestsAt(from);
        const one = await withPair(from, `docker://${mirror.host}/subset/arm:m1`, (src, dest) =>
            copyImage({ source: src, destination: dest, platforms: ["linux/arm64"] }),
        );
        assert.equal(one.indexCopied, false);
        assert.equal(one.sourceDigest, indexDigest);
        assert.deepEqual(one.platformDigests, { "linux/arm64/v8": arm });
        assert.equal(one.tagged, "m1");
        assert.deepEqual(await digestsAt(`docker://${mirror.host}/subset/arm:m1`), [arm]);

        const both = await withPair(from, `docker://${mirror.host}/subset/both:m1`, (src, dest) =>
            copyImage({ source: src, destination: dest, platforms: ["linux/amd64", "linux/arm64/v8"] }),
        );
        assert.equal(both.indexCopied, true);
        assert.deepEqual(await digestsAt(`docker://${mirror.host}/subset/both:m1`), [indexDigest, amd, arm]);

        await assert.rejects(
            withPair(from, `docker://${mirror.host}/subset/none:m1`, (src, dest) =>
                copyImage({ source: src, destination: dest, platforms: ["linux/s390x"] }),
            ),
            (e: { code?: string; message?: string }) =>
                e.code === "ERR_NOT_FOUND" && /linux\/s390x.*linux\/amd64, linux\/arm64\/v8/.test(e.message ?? ""),
        );
    });

    it("copies several images at once, sharing blobs in flight, and reports progress", async () => {
        const pairs = await Promise.all(
            images.map(async (image) => ({
                source: await openImageSource(`docker://${source.host}/src/${image}`, open),
                destination: await openImageDestination(`docker://${site.host}/many/all:${image.split(":")[0]}`, open),
            })),
        );
        const progress: CopyProgress[] = [];
        try {
            const entries = await copyImages(
                [
                    ...pairs,
                    { ...pairs[0]!, tag: "again" },
                    {
                        source: pairs[1]!.source,
                        destination: pairs[1]!.destination,
                        digest: `sha256:${"9".repeat(64)}`,
                    },
                ],
                {
                    imageConcurrency: 5,
                    concurrency: 2,
                    progressIntervalMs: 5,
                    onProgress: (p) => progress.push(p),
                },
            );
            assert.deepEqual(
                entries.map((e) => e.ok),
                [true, true, true, true, false],
            );
            const failed = entries[4]!;
            assert.ok(!failed.ok && (failed.error as { code?: string }).code === "ERR_NOT_FOUND");
            const results = entries.flatMap((e) => (e.ok ? [e.result] : []));
            // the two copies of the index into one repository moved its blobs once
            const indexBlobs = results[0]!.blobsCopied + results[3]!.blobsCopied;
            assert.equal(indexBlobs, 5);
            for (const image of images) {
                assert.deepEqual(
                    await digestsAt(`docker://${site.host}/many/all:${image.split(":")[0]}`),
                    await digestsAt(`docker://${source.host}/src/${image}`),
                );
            }
            const last = progress[progress.length - 1]!;
            assert.equal(last.done, true);
            assert.deepEqual(last.images, { done: 4, failed: 1, total: 5 });
            assert.equal(
                last.bytes,
                results.reduce((n, r) => n + r.bytes, 0),
            );
            assert.equal(last.blobs.inFlight, 0);
            assert.ok(last.bytesPerSecond >= 0);
        } finally {
            for (const p of pairs) {
                await p.source.close();
                await p.destination.close();
            }
        }
    });
});
