import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { digestOf } from "../../../provider/oci/digest";
import { openOciLayoutDestination, openOciLayoutSource } from "../../../provider/oci/layout_transport";
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, parseManifest } from "../../../provider/oci/manifest";
import { parseImageLocation } from "../../../provider/oci/transports";
import type { ImageSource, OciLayoutLocation } from "../../../provider/oci/types";
import {
    makeImage,
    makeIndex,
    makeLayer,
    putImage,
    readAll,
    skopeo,
    skopeoAvailable,
    type TestImage,
    tempDir,
} from "./fixtures";

function loc(dir: string, reference?: string): OciLayoutLocation {
    return parseImageLocation(reference === undefined ? `oci:${dir}` : `oci:${dir}:${reference}`) as OciLayoutLocation;
}

/** Reads every blob of `image` through `src` and checks it byte for byte. */
async function assertHolds(src: ImageSource, image: TestImage): Promise<void> {
    for (const b of [image.config, ...image.layers]) {
        assert.equal(await src.hasBlob(b.digest), true, b.digest);
        const { stream, size } = await src.getBlob(b.digest);
        assert.equal(size, b.bytes.length);
        assert.deepEqual(await readAll(stream), b.bytes);
    }
}

function listTree(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join("/")).sort();
}

describe("oci layout transport (judged by skopeo)", function () {
    this.timeout(60_000);
    const dirs: string[] = [];
    const tmp = (prefix: string): string => {
        const d = tempDir(prefix);
        dirs.push(d);
        return d;
    };
    const shared = makeLayer({ "etc/os-release": "ID=airgap-test\n" });
    const amd = makeImage([shared, makeLayer({ "bin/app": "amd64 binary\n" })], "amd64");
    const arm = makeImage([shared, makeLayer({ "bin/app": "arm64 binary\n" })], "arm64", "v8");

    before(function () {
        if (!skopeoAvailable()) {
            this.skip();
        }
    });

    after(() => {
        for (const d of dirs) {
            fs.rmSync(d, { recursive: true, force: true });
        }
    });

    it("writes a layout skopeo reads with our exact manifest bytes, and copies preserving the digest", async () => {
        const a = tmp("a");
        // Indented JSON: any re-serialization would change the digest.
        const image = makeImage([shared], "amd64", undefined, 2);
        const dest = await openOciLayoutDestination(loc(a, "v1"));
        assert.equal(await putImage(dest, image), image.manifest.digest);
        await dest.commit();
        await dest.close();

        assert.deepEqual(skopeo("inspect", "--raw", `oci:${a}:v1`), image.manifest.bytes);
        assert.equal(
            skopeo("inspect", "--format", "{{.Digest}}", `oci:${a}:v1`).toString().trim(),
            image.manifest.digest,
        );

        const b = tmp("b");
        skopeo("copy", "--preserve-digests", `oci:${a}:v1`, `oci:${b}:copied`);
        assert.equal(digestOf(skopeo("inspect", "--raw", `oci:${b}:copied`)), image.manifest.digest);

        const src = await openOciLayoutSource(loc(b, "copied"));
        assert.deepEqual(await src.getManifest(), {
            bytes: image.manifest.bytes,
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            digest: image.manifest.digest,
        });
        assert.deepEqual(await src.listTags(), ["copied"]);
        await assertHolds(src, image);
        await src.close();
    });

    it("reads a layout skopeo wrote", async () => {
        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a));
        await putImage(dest, amd, "first");
        await putImage(dest, arm, "second");
        await dest.close();

        const b = tmp("b");
        skopeo("copy", `oci:${a}:first`, `oci:${b}:one`);
        skopeo("copy", `oci:${a}:second`, `oci:${b}:two`);
        const raw = skopeo("inspect", "--raw", `oci:${b}:two`);

        const src = await openOciLayoutSource(loc(b, "two"));
        assert.deepEqual(await src.listTags(), ["one", "two"]);
        const got = await src.getManifest();
        assert.deepEqual(got.bytes, raw);
        assert.equal(got.digest, digestOf(raw));
        const parsed = parseManifest(got.bytes, got.mediaType);
        assert.equal(parsed.kind, "manifest");
        if (parsed.kind === "manifest") {
            for (const d of [parsed.config, ...parsed.layers]) {
                const { stream } = await src.getBlob(d.digest);
                assert.equal(digestOf(await readAll(stream)), d.digest);
            }
        }
        await assert.rejects(
            openOciLayoutSource(loc(b)).then((s) => s.getManifest()),
            {
                code: "ERR_NOT_FOUND",
                message: new RegExp(
                    `OCI layout ${b} holds 2 images; name one as "oci:${b}:<reference>" \\(names: one, two\\)`,
                ),
            },
        );
        await assert.rejects(
            openOciLayoutSource(loc(b, "three")).then((s) => s.getManifest()),
            {
                code: "ERR_NOT_FOUND",
                message: `no image named "three" in OCI layout ${b} (it holds "one", "two")`,
            },
        );
    });

    it("round-trips a multi-platform index whose images share a layer", async () => {
        const a = tmp("a");
        const index = makeIndex([
            { image: amd, architecture: "amd64" },
            { image: arm, architecture: "arm64", variant: "v8" },
        ]);
        const dest = await openOciLayoutDestination(loc(a, "multi"));
        assert.equal(await putImage(dest, amd, amd.manifest.digest), amd.manifest.digest);
        assert.equal(await putImage(dest, arm, arm.manifest.digest), arm.manifest.digest);
        // Children are stored by digest only: index.json stays empty until the index is named.
        assert.deepEqual(await dest.listTags(), []);
        assert.equal(await dest.putManifest(index.bytes, MEDIA_TYPE_OCI_INDEX), index.digest);
        await dest.close();
        const blobs = listTree(path.join(a, "blobs", "sha256"));
        // Shared layer once, 2 own layers, 2 configs, 2 manifests, 1 index.
        assert.equal(blobs.length, 8);

        assert.deepEqual(skopeo("inspect", "--raw", `oci:${a}:multi`), index.bytes);
        // Without --all skopeo picks the platform's image from the index: ours, byte for byte.
        const c = tmp("c");
        skopeo("--override-arch", "arm64", "--override-variant", "v8", "copy", `oci:${a}:multi`, `oci:${c}:arm`);
        assert.deepEqual(skopeo("inspect", "--raw", `oci:${c}:arm`), arm.manifest.bytes);

        const b = tmp("b");
        skopeo("copy", "--all", "--preserve-digests", `oci:${a}:multi`, `oci:${b}:multi`);
        assert.deepEqual(skopeo("inspect", "--raw", `oci:${b}:multi`), index.bytes);

        const src = await openOciLayoutSource(loc(b, "multi"));
        assert.deepEqual(await src.getManifest(), {
            bytes: index.bytes,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            digest: index.digest,
        });
        for (const image of [amd, arm]) {
            assert.deepEqual(await src.getManifest(image.manifest.digest), {
                bytes: image.manifest.bytes,
                mediaType: MEDIA_TYPE_OCI_MANIFEST,
                digest: image.manifest.digest,
            });
            await assertHolds(src, image);
        }
    });

    it("keeps a layout consistent when names move and images are re-put", async () => {
        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a, "latest"));
        await putImage(dest, amd);
        await putImage(dest, amd, "v1");
        await putImage(dest, arm);
        await putImage(dest, arm);
        await dest.close();
        const index = JSON.parse(fs.readFileSync(path.join(a, "index.json"), "utf8"));
        assert.deepEqual(index, {
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            manifests: [
                {
                    mediaType: MEDIA_TYPE_OCI_MANIFEST,
                    digest: amd.manifest.digest,
                    size: amd.manifest.bytes.length,
                    annotations: { "org.opencontainers.image.ref.name": "v1" },
                },
                {
                    mediaType: MEDIA_TYPE_OCI_MANIFEST,
                    digest: arm.manifest.digest,
                    size: arm.manifest.bytes.length,
                    annotations: { "org.opencontainers.image.ref.name": "latest" },
                },
            ],
        });
        assert.equal(
            skopeo("inspect", "--format", "{{.Digest}}", `oci:${a}:latest`).toString().trim(),
            arm.manifest.digest,
        );
        assert.equal(listTree(a).filter((p) => p.includes(".tmp-")).length, 0);
    });
});

describe("oci layout transport (failures)", () => {
    const dirs: string[] = [];
    const tmp = (prefix: string): string => {
        const d = tempDir(prefix);
        dirs.push(d);
        return d;
    };
    const image = makeImage([makeLayer({ a: "a\n" })]);

    after(() => {
        for (const d of dirs) {
            fs.rmSync(d, { recursive: true, force: true });
        }
    });

    it("refuses a blob that does not match its digest or size and leaves nothing behind", async () => {
        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a));
        const layer = image.layers[0]!;
        await assert.rejects(dest.putBlob(Readable.from([Buffer.from("tampered")]), { digest: layer.digest }), {
            code: "ERR_VERIFICATION",
            message: `blob ${layer.digest}: digest mismatch, expected ${layer.digest}, got ${digestOf("tampered")}`,
        });
        await assert.rejects(
            dest.putBlob(Readable.from([layer.bytes]), { digest: layer.digest, size: layer.bytes.length + 1 }),
            { code: "ERR_VERIFICATION", message: /expected \d+ bytes, got \d+/ },
        );
        assert.equal(await dest.hasBlob(layer.digest), false);
        assert.deepEqual(listTree(path.join(a, "blobs")), ["sha256"]);
    });

    it("checks free space before writing a blob of known size", async () => {
        const a = tmp("a");
        const layer = image.layers[0]!;
        const small = await openOciLayoutDestination(loc(a), { freeSpace: async () => 10 });
        await assert.rejects(
            small.putBlob(Readable.from([layer.bytes]), { digest: layer.digest, size: layer.bytes.length }),
            {
                code: "ERR_IO",
                message: `not enough disk space for blob ${layer.digest} (${layer.bytes.length} bytes) in OCI layout ${a}: only 10 bytes left`,
            },
        );
        // The real statfs: no disk has 2^50 bytes free.
        const real = await openOciLayoutDestination(loc(a));
        let read = false;
        const stream = new Readable({
            read() {
                read = true;
                this.push(null);
            },
        });
        await assert.rejects(real.putBlob(stream, { digest: layer.digest, size: 2 ** 50 }), {
            code: "ERR_IO",
            message: new RegExp(
                `^not enough disk space for blob ${layer.digest} \\(${2 ** 50} bytes\\) in OCI layout .*: only \\d+ bytes left$`,
            ),
        });
        assert.equal(read, false);
        assert.equal(stream.destroyed, true);
    });

    it("refuses a manifest whose blobs are missing, or whose digest is not the one claimed", async () => {
        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a, "v1"));
        await assert.rejects(dest.putManifest(image.manifest.bytes, MEDIA_TYPE_OCI_MANIFEST), {
            code: "ERR_VERIFICATION",
            message: `manifest ${image.manifest.digest} references blob ${image.config.digest}, which is not in OCI layout ${a}; put it first`,
        });
        const other = `sha256:${"0".repeat(64)}`;
        await assert.rejects(dest.putManifest(image.manifest.bytes, MEDIA_TYPE_OCI_MANIFEST, other), {
            code: "ERR_VERIFICATION",
            message: `manifest for ${other}: the bytes given have digest ${image.manifest.digest}`,
        });
        await assert.rejects(dest.putManifest(image.manifest.bytes, MEDIA_TYPE_OCI_MANIFEST, "bad tag"), {
            code: "ERR_INVALID_ARGUMENT",
            argument: "tagOrDigest",
        });
        assert.deepEqual(await dest.listTags(), []);
    });

    it("refuses to open what is not a layout, and detects a corrupted manifest", async () => {
        const empty = tmp("empty");
        await assert.rejects(openOciLayoutSource(loc(empty)), {
            code: "ERR_NOT_FOUND",
            message: `${empty} is not an OCI image layout: ${path.join(empty, "oci-layout")} is missing`,
        });
        fs.writeFileSync(path.join(empty, "oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
        await assert.rejects(openOciLayoutDestination(loc(empty)), {
            code: "ERR_PARSE",
            message: /unsupported imageLayoutVersion "2\.0\.0"/,
        });

        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a, "v1"));
        await putImage(dest, image);
        const file = path.join(a, "blobs", "sha256", image.manifest.digest.slice("sha256:".length));
        fs.writeFileSync(file, Buffer.concat([image.manifest.bytes, Buffer.from(" ")]));
        const src = await openOciLayoutSource(loc(a, "v1"));
        await assert.rejects(src.getManifest(), {
            code: "ERR_VERIFICATION",
            message: new RegExp(`^manifest ${image.manifest.digest} in ${a}: stored bytes have digest sha256:`),
        });
        await assert.rejects(src.getBlob(`sha256:${"1".repeat(64)}`), { code: "ERR_NOT_FOUND" });
        assert.equal(await src.hasBlob(`sha256:${"1".repeat(64)}`), false);
    });

    it("skips a blob that is already present without reading the stream", async () => {
        const a = tmp("a");
        const dest = await openOciLayoutDestination(loc(a));
        const layer = image.layers[0]!;
        await dest.putBlob(Readable.from([layer.bytes]), { digest: layer.digest, size: layer.bytes.length });
        const again = Readable.from([Buffer.from("never read")]);
        await dest.putBlob(again, { digest: layer.digest, size: layer.bytes.length });
        assert.equal(again.destroyed, true);
        assert.deepEqual(fs.readFileSync(path.join(a, "blobs", "sha256", layer.digest.slice(7))), layer.bytes);
    });
});
