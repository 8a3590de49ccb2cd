import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../provider/oci/digest";
import type { ImageMirrorArgs } from "../../sdk";
import { createProgramStack, type ProgramStack, stateFilesContaining } from "../harness/program";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll } from "../harness/tmp";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

/**
 * A deployment-repository program: the arguments come from stack config, the registry
 * credentials from a config secret.
 */
const imageProgram = `import * as pulumi from "@pulumi/pulumi";
import { ImageMirror, type ImageMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const args = config.requireObject<ImageMirrorArgs>("args");
const m = new ImageMirror("release", { ...args, auth: config.requireSecret("auth") });
export const images = m.images;
export const mirrored = m.mirrored;
export const registries = m.registries;
export const registriesConf = m.registriesConf;
export const blobCount = m.blobCount;
export const drift = m.drift;
`;

describe("ImageMirror with the real Pulumi CLI from a program directory, judged by skopeo", function () {
    this.timeout(300_000);

    let source: RegistryServer;
    let mirror: RegistryServer;
    let t: ProgramStack;
    const secretPassword = "e2e-registry-password-do-not-store";
    let app: string;
    let multi: string;
    let mirroredApp: string;
    let mirroredMulti: string;

    const digestAt = async (ref: string) => digestOf(await skopeoRaw(ref));
    const exists = async (ref: string) =>
        (await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code === 0;
    const push = async (from: string, to: string) =>
        skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", from, `docker://${to}`]);

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${source.host}/src/app:v1`;
        multi = `${source.host}/src/multi:m1`;
        mirroredApp = `docker://${mirror.host}/src/app:v1`;
        mirroredMulti = `docker://${mirror.host}/src/multi:m1`;
        await push(await singleLayout("v1", 3000, 41), app);
        await push((await multiArchLayout("m1")).reference, multi);
        const auth = JSON.stringify({
            auths: { "quay.io": { auth: Buffer.from(`robot:${secretPassword}`).toString("base64") } },
        });
        const args: ImageMirrorArgs = {
            images: [app, multi],
            destination: `docker://${mirror.host}`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [source.host, mirror.host] },
        };
        t = await createProgramStack("imagemirror", {
            source: imageProgram,
            config: () => ({ args: JSON.stringify(args), auth: { secret: auth } }),
        });
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("up mirrors every image with its digest", async () => {
        const r = await t.up();
        const appDigest = await digestAt(`docker://${app}`);
        const multiDigest = await digestAt(`docker://${multi}`);
        assert.deepEqual(r.outputs.images, { [app]: appDigest, [multi]: multiDigest });
        assert.equal(await digestAt(mirroredApp), appDigest);
        assert.equal(await digestAt(mirroredMulti), multiDigest);
        assert.deepEqual(r.outputs.mirrored, {
            [app]: `${mirror.host}/src/app@${appDigest}`,
            [multi]: `${mirror.host}/src/multi@${multiDigest}`,
        });
        assert.equal(r.outputs.blobCount, 7);
        assert.match(r.outputs.registriesConf as string, /mirror-by-digest-only = true/);
    });

    it("keeps the registry credentials out of the state in plain text", () => {
        const encoded = Buffer.from(`robot:${secretPassword}`).toString("base64");
        // The check can fail: the destination, which is in the state, is found the same way.
        assert.ok(stateFilesContaining(t, [mirror.host]).length > 0);
        assert.deepEqual(stateFilesContaining(t, [secretPassword, encoded]), []);
        // The stack's config file holds the credentials encrypted, never as they were given.
        const stackConfig = fs.readFileSync(path.join(t.dir, "Pulumi.test.yaml"), "utf8");
        assert.match(stackConfig, /auth:\s*\n\s*secure: /);
        assert.ok(!stackConfig.includes(secretPassword) && !stackConfig.includes(encoded), stackConfig);
    });

    it("preview --expect-no-changes passes right after up", async () => {
        await t.preview({ expectNoChanges: true });
    });

    it("a tag moving upstream shows in preview as that image's digest changing, and up mirrors it", async () => {
        const before = await digestAt(`docker://${app}`);
        await push(await singleLayout("v1", 3000, 42), app);
        const after = await digestAt(`docker://${app}`);
        assert.notEqual(after, before);
        const preview = await t.preview();
        assert.equal(preview.changes.update, 1, t.lastOutput());
        const out = t.lastOutput();
        assert.match(out, /~ images\s*:/, out);
        const escaped = app.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
        assert.match(out, new RegExp(`~ "?${escaped}"?\\s*: "${before}" => "${after}"`), out);
        assert.doesNotMatch(out, new RegExp(`~ "?${multi.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}"?\\s*:`), out);
        await t.up();
        assert.equal(await digestAt(mirroredApp), after);
        await t.preview({ expectNoChanges: true });
    });

    it("refresh reports a manifest deleted at the destination, and up repairs it", async () => {
        await skopeo(["delete", "--tls-verify=false", mirroredApp]);
        assert.ok(!(await exists(mirroredApp)));
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        await assert.rejects(
            t.preview({ expectNoChanges: true }),
            /no changes were expected (for preview )?but changes were proposed/,
        );
        const up = await t.up();
        assert.equal(up.changes.update, 1, t.lastOutput());
        assert.deepEqual(up.outputs.drift, []);
        assert.equal(await digestAt(mirroredApp), await digestAt(`docker://${app}`));
        await t.preview({ expectNoChanges: true });
    });

    it("destroy deletes the manifests it pushed", async () => {
        await t.destroy();
        assert.ok(!(await exists(mirroredApp)));
        assert.ok(!(await exists(mirroredMulti)));
        assert.ok(await exists(`docker://${app}`), "the source is untouched");
    });
});
