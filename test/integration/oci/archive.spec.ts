import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../../provider/oci/digest";
import {
    openOciArchiveDestination,
    openOciArchiveSource,
    openOciLayoutDestination,
} from "../../../provider/oci/layout_transport";
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from "../../../provider/oci/manifest";
import { parseImageLocation } from "../../../provider/oci/transports";
import type { OciArchiveLocation, OciLayoutLocation } from "../../../provider/oci/types";
import { makeImage, makeIndex, makeLayer, putImage, readAll, skopeo, skopeoAvailable, tempDir } from "./fixtures";

const archiveLoc = (s: string): OciArchiveLocation => parseImageLocation(`oci-archive:${s}`) as OciArchiveLocation;
const layoutLoc = (s: string): OciLayoutLocation => parseImageLocation(`oci:${s}`) as OciLayoutLocation;

describe("oci-archive transport (judged by skopeo and tar)", function () {
    this.timeout(60_000);
    let work: string;
    const shared = makeLayer({ "etc/os-release": "ID=airgap-test\n" });
    const amd = makeImage([shared, makeLayer({ "bin/app": "amd64\n" })], "amd64", undefined, 1);
    const arm = makeImage([shared, makeLayer({ "bin/app": "arm64\n" })], "arm64", "v8");
    const index = makeIndex([
        { image: amd, architecture: "amd64" },
        { image: arm, architecture: "arm64", variant: "v8" },
    ]);

    before(function () {
        if (!skopeoAvailable()) {
            this.skip();
        }
        work = tempDir("archive");
    });

    after(() => {
        if (work !== undefined) {
            fs.rmSync(work, { recursive: true, force: true });
        }
    });

    it("writes an archive that tar lists and skopeo reads and copies with our exact bytes", async () => {
        const file = path.join(work, "multi.tar");
        const dest = await openOciArchiveDestination(archiveLoc(`${file}:multi`));
        await putImage(dest, amd, amd.manifest.digest);
        await putImage(dest, arm, arm.manifest.digest);
        await dest.putManifest(index.bytes, MEDIA_TYPE_OCI_INDEX);
        assert.equal(fs.existsSync(file), false, "nothing is visible before commit");
        await dest.commit();
        await dest.close();
        assert.deepEqual(
            fs.readdirSync(work).filter((n) => n.includes(".tmp-")),
            [],
            "the staging area is removed",
        );

        const names = execFileSync("tar", ["-tf", file]).toString().trim().split("\n");
        assert.deepEqual(names.slice(0, 4), ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]);
        assert.equal(names.length, 4 + 8);

        assert.deepEqual(skopeo("inspect", "--raw", `oci-archive:${file}:multi`), index.bytes);
        const out = path.join(work, "out");
        skopeo("copy", "--all", "--preserve-digests", `oci-archive:${file}:multi`, `oci:${out}:multi`);
        assert.deepEqual(skopeo("inspect", "--raw", `oci:${out}:multi`), index.bytes);
        assert.deepEqual(
            fs.readFileSync(path.join(out, "blobs", "sha256", amd.manifest.digest.slice("sha256:".length))),
            amd.manifest.bytes,
        );
    });

    it("reads an archive skopeo wrote", async () => {
        const layout = path.join(work, "layout");
        const dest = await openOciLayoutDestination(layoutLoc(`${layout}:v1`));
        await putImage(dest, amd);
        await dest.close();
        const file = path.join(work, "by-skopeo.tar");
        skopeo("copy", `oci:${layout}:v1`, `oci-archive:${file}:app-1.0`);
        const raw = skopeo("inspect", "--raw", `oci-archive:${file}:app-1.0`);

        const src = await openOciArchiveSource(archiveLoc(`${file}:app-1.0`));
        try {
            assert.deepEqual(await src.listTags(), ["app-1.0"]);
            assert.deepEqual(await src.getManifest(), {
                bytes: raw,
                mediaType: MEDIA_TYPE_OCI_MANIFEST,
                digest: digestOf(raw),
            });
            for (const b of [amd.config, ...amd.layers]) {
                const { stream } = await src.getBlob(b.digest);
                assert.deepEqual(await readAll(stream), b.bytes);
            }
            await assert.rejects(src.getBlob(`sha256:${"1".repeat(64)}`), {
                code: "ERR_NOT_FOUND",
                message: `blob sha256:${"1".repeat(64)} is not in OCI archive ${file}`,
            });
        } finally {
            await src.close();
        }
    });

    it("reads an archive made by the tar command", async () => {
        const layout = path.join(work, "for-tar");
        const dest = await openOciLayoutDestination(layoutLoc(`${layout}:v1`));
        await putImage(dest, arm);
        await dest.close();
        const file = path.join(work, "by-tar.tar");
        execFileSync("tar", ["--format=pax", "-C", layout, "-cf", file, "."]);
        const src = await openOciArchiveSource(archiveLoc(file));
        try {
            assert.deepEqual((await src.getManifest()).bytes, arm.manifest.bytes);
        } finally {
            await src.close();
        }
    });

    it("refuses truncated archives, non-archives and archives with a tampered blob", async () => {
        const file = path.join(work, "multi.tar");
        const bytes = fs.readFileSync(file);
        const cut = path.join(work, "cut.tar");
        fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 2048));
        await assert.rejects(openOciArchiveSource(archiveLoc(cut)), {
            code: "ERR_PARSE",
            message: new RegExp(`^OCI archive ${cut} is truncated`),
        });
        const text = path.join(work, "text.tar");
        fs.writeFileSync(text, "this is not an archive\n");
        await assert.rejects(openOciArchiveSource(archiveLoc(text)), {
            code: "ERR_PARSE",
            message: `OCI archive ${text} is not a tar archive`,
        });
        await assert.rejects(openOciArchiveSource(archiveLoc(path.join(work, "absent.tar"))), {
            code: "ERR_NOT_FOUND",
        });

        const tampered = Buffer.from(bytes);
        const layer = shared.gz.bytes;
        const at = tampered.indexOf(layer);
        assert.ok(at > 0);
        tampered[at + 20] = tampered[at + 20]! ^ 0xff;
        const bad = path.join(work, "tampered.tar");
        fs.writeFileSync(bad, tampered);
        await assert.rejects(openOciArchiveSource(archiveLoc(bad)), {
            code: "ERR_VERIFICATION",
            message: new RegExp(`^blob ${shared.gz.digest}: digest mismatch`),
        });

        const empty = path.join(work, "empty.tar");
        execFileSync("tar", ["-cf", empty, "-C", work, "text.tar"]);
        await assert.rejects(openOciArchiveSource(archiveLoc(empty)), {
            code: "ERR_PARSE",
            message: `OCI archive ${empty} does not hold a valid OCI image layout (oci-layout and index.json at its top)`,
        });
        assert.deepEqual(
            fs.readdirSync(work).filter((n) => n.includes(".tmp-")),
            [],
        );
    });
});
