import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../provider/oci/digest";
import type { ImageMirrorArgs } from "../../sdk";
import { type CliResult, createProgramStack, type ProgramStack } from "../harness/program";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";
import { singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

/** A deployment-repository program: the arguments from stack config, the credentials a config secret. */
const lockProgram = `import * as pulumi from "@pulumi/pulumi";
import { ImageMirror, type ImageMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const args = config.requireObject<ImageMirrorArgs>("args");
const m = new ImageMirror("release", { ...args, auth: config.requireSecret("auth") });
export const images = m.images;
export const mirrored = m.mirrored;
`;

/** The same, with the mirror's \`registries\` output fed into the host configuration. */
const chainedProgram = `import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig, ImageMirror, type ImageMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const args = config.requireObject<ImageMirrorArgs>("args");
const m = new ImageMirror("release", { ...args, auth: config.requireSecret("auth") });
const host = new HostMirrorConfig("site", {
    target: { local: { root: config.require("root") } },
    registries: m.registries,
});
export const images = m.images;
export const registries = m.registries;
export const files = host.files;
`;

/** Credentials for a registry the tests do not use: present, so the lock is resolved under a secret. */
const auth = JSON.stringify({ auths: { "quay.io": { auth: Buffer.from("robot:unused").toString("base64") } } });

const pushImage = async (to: string, seed: number) =>
    skopeo([
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        await singleLayout("v1", 2000, seed),
        `docker://${to}`,
    ]);

const reachable = async (ref: string) =>
    (await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code === 0;

/**
 * Runs `pulumi <op> --non-interactive` and checks that it fails within 60 s with an error on the
 * ImageMirror naming the `images` argument, the way the SDK reports program-time errors.
 */
async function expectFastFailure(t: ProgramStack, op: string[], unreachable: string): Promise<CliResult> {
    const r = await t.cli([...op, "--non-interactive"], { timeoutMs: 120_000 });
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, t.lastOutput());
    assert.ok(r.elapsedMs < 60_000, `pulumi ${op.join(" ")} took ${r.elapsedMs} ms\n${t.lastOutput()}`);
    assert.match(out, /ImageMirror "release": images: /, t.lastOutput());
    assert.ok(out.includes(unreachable), t.lastOutput());
    assert.doesNotMatch(out, /unhandled exception|error serializing property/, t.lastOutput());
    return r;
}

describe("ImageMirror lockFile with the real Pulumi CLI from a program directory", function () {
    this.timeout(300_000);

    let source: RegistryServer;
    let mirror: RegistryServer;
    let t: ProgramStack;
    let lockFile: string;
    let app: string;
    let lockedDigest: string;

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${source.host}/src/app:v1`;
        await pushImage(app, 7);
        lockFile = path.join(await makeTempDir("image-lock"), "images.lock.json");
        const args: ImageMirrorArgs = {
            images: [app],
            destination: `docker://${mirror.host}`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [source.host, mirror.host] },
            lockFile,
        };
        t = await createProgramStack("imagelock", {
            source: lockProgram,
            config: () => ({ args: JSON.stringify(args), auth: { secret: auth } }),
        });
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("up writes the lock file with the resolved digest", async () => {
        const r = await t.up();
        lockedDigest = digestOf(await skopeoRaw(`docker://${app}`));
        const lock = JSON.parse(fs.readFileSync(lockFile, "utf8")) as { images: Record<string, string> };
        assert.deepEqual(lock.images, { [app]: lockedDigest });
        assert.deepEqual(r.outputs.images, { [app]: lockedDigest });
        assert.deepEqual(r.outputs.mirrored, { [app]: `${mirror.host}/src/app@${lockedDigest}` });
    });

    it("with the source registry gone, preview --expect-no-changes passes: the lock comes from the file", async () => {
        await source.stop();
        await t.preview({ expectNoChanges: true });
    });

    it("without the lock file the same preview needs the source registry, and fails", async () => {
        fs.rmSync(lockFile);
        await assert.rejects(
            t.preview(),
            new RegExp(`ImageMirror "release": images: .*${source.host.replace(/\./g, "\\.")}`),
        );
    });

    it("a source registry unreachable with no lock file: preview and up fail fast, naming the argument, and change nothing", async () => {
        assert.ok(!fs.existsSync(lockFile));
        assert.ok(!(await reachable(`docker://${app}`)), "the source registry is stopped");
        const mirrored = `docker://${mirror.host}/src/app:v1`;
        assert.equal(digestOf(await skopeoRaw(mirrored)), lockedDigest);
        const state = t.stateBytes();
        const storage = snapshotTree(mirror.dataDir, { identity: true });
        for (const op of [["preview"], ["up", "--yes"]]) {
            await expectFastFailure(t, op, source.host);
        }
        assert.ok(t.stateBytes().equals(state), "the checkpoint changed");
        assert.deepEqual(snapshotTree(mirror.dataDir, { identity: true }), storage, "something was pushed");
        assert.equal(digestOf(await skopeoRaw(mirrored)), lockedDigest);
        assert.ok(!fs.existsSync(lockFile), "a failed resolution wrote a lock file");
    });
});

describe("ImageMirror outputs exported and fed into HostMirrorConfig, with the real Pulumi CLI", function () {
    this.timeout(300_000);

    let source: RegistryServer;
    let mirror: RegistryServer;
    let t: ProgramStack;
    let root: string;
    let app: string;

    const dropIn = () => path.join(root, "etc/containers/registries.conf.d/site.conf");

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${source.host}/src/app:v1`;
        await pushImage(app, 11);
        root = await makeTempDir("image-host-root");
        const args: ImageMirrorArgs = {
            images: [app],
            destination: `docker://${mirror.host}`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [source.host, mirror.host] },
        };
        t = await createProgramStack("imagechain", {
            source: chainedProgram,
            config: () => ({ args: JSON.stringify(args), root, auth: { secret: auth } }),
        });
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("up mirrors the image and writes a registries drop-in naming the mirror", async () => {
        const r = await t.up();
        assert.equal(r.changes.create, 3, t.lastOutput());
        const digest = digestOf(await skopeoRaw(`docker://${app}`));
        assert.deepEqual(r.outputs.images, { [app]: digest });
        assert.deepEqual(r.outputs.registries, [
            { source: source.host, mirrors: [mirror.host], mirrorByDigestOnly: true, insecure: true },
        ]);
        const files = r.outputs.files as Record<string, string>;
        assert.deepEqual(Object.keys(files), ["etc/containers/registries.conf.d/site.conf"]);
        const conf = fs.readFileSync(dropIn(), "utf8");
        assert.match(conf, new RegExp(`location = "${source.host}"`), conf);
        assert.match(conf, new RegExp(`\\[\\[registry\\.mirror\\]\\]\\nlocation = "${mirror.host}"`), conf);
        assert.equal(digestOf(await skopeoRaw(`docker://${mirror.host}/src/app:v1`)), digest);
    });

    it("with the lock unresolvable, preview and up fail fast naming ImageMirror and the argument, and change nothing", async () => {
        await source.stop();
        assert.ok(!(await reachable(`docker://${app}`)), "the source registry is stopped");
        const state = t.stateBytes();
        const host = snapshotTree(root, { identity: true });
        for (const op of [["preview"], ["up", "--yes"]]) {
            const r = await expectFastFailure(t, op, source.host);
            // The host configuration waits on the mirror: it fails with it, not on its own.
            assert.doesNotMatch(r.stdout + r.stderr, /HostMirrorConfig "site"/, t.lastOutput());
        }
        assert.ok(t.stateBytes().equals(state), "the checkpoint changed");
        assert.deepEqual(snapshotTree(root, { identity: true }), host);
    });
});
