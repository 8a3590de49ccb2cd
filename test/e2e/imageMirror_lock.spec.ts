import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../provider/oci/digest";
import { ImageMirror } from "../../sdk";
import { createTestStack, type TestStack } from "../harness/pulumi";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

describe("ImageMirror lockFile with the real Pulumi CLI", function () {
    this.timeout(300_000);

    let source: RegistryServer;
    let mirror: RegistryServer;
    let t: TestStack;
    let lockFile: string;
    let app: string;

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${source.host}/src/app:v1`;
        await skopeo([
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            await singleLayout("v1", 2000, 7),
            `docker://${app}`,
        ]);
        lockFile = path.join(await makeTempDir("image-lock"), "images.lock.json");
        t = await createTestStack("imagelock", async () => {
            // No stack outputs: a failing lock resolution must fail the preview, not wait on them.
            new ImageMirror("release", {
                images: [app],
                destination: `docker://${mirror.host}`,
                repositoryPath: "strip-registry",
                tls: { insecureRegistries: [source.host, mirror.host] },
                lockFile,
            });
        });
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("up writes the lock file with the resolved digest", async () => {
        await t.up();
        const lock = JSON.parse(fs.readFileSync(lockFile, "utf8")) as { images: Record<string, string> };
        assert.deepEqual(lock.images, { [app]: digestOf(await skopeoRaw(`docker://${app}`)) });
    });

    it("with the source registry gone, preview --expect-no-changes passes: the lock comes from the file", async () => {
        await source.stop();
        await t.preview({ expectNoChanges: true });
    });

    it("without the lock file the same preview needs the source registry, and fails", async () => {
        fs.rmSync(lockFile);
        await assert.rejects(t.preview());
    });
});
