import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../provider/oci/digest";
import type { AptMirrorArgs, ImageMirrorArgs } from "../../sdk";
import type { AptClient } from "../harness/fixtures/aptget";
import { aptInstallsFrom } from "../harness/fixtures/aptsite";
import { buildRepo, type AptRepo, type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import {
    copyOut,
    dataFilesystem,
    debugfs,
    fsck,
    qemuImgCheck,
    qemuImgInfo,
    serveRegistryStorage,
} from "../harness/fixtures/vmimage";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { run } from "../harness/servers/process";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

/** A site's program: an APT mirror, an image mirror into an OCI layout, files and a git repository, in one MirrorVM. */
const vmProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs, ImageMirror, type ImageMirrorArgs, MirrorVM } from "pulumi-airgap";

const config = new pulumi.Config();
const debian = new AptMirror("debian", {
    ...config.requireObject<AptMirrorArgs>("apt"),
    signing: { privateKey: config.requireSecret("signingKey") },
});
const release = new ImageMirror("release", config.requireObject<ImageMirrorArgs>("images"));
const vm = new MirrorVM("mirror", {
    output: config.require("output"),
    apt: [debian],
    images: [release],
    files: [{ source: config.require("files"), path: "images" }],
    git: [{ source: config.require("git"), path: "model.git" }],
    address: "10.0.0.10",
});
export const path = vm.path;
export const sha256 = vm.sha256;
export const contentDigest = vm.contentDigest;
export const content = vm.content;
export const urls = vm.urls;
export const hostConfig = vm.hostConfig;
export const drift = vm.drift;
export const publicKey = debian.publicKey;
export const images = release.images;
`;

async function sha256Of(file: string): Promise<string> {
    return (await run("sha256sum", [file])).stdout.split(" ")[0]!;
}

describe("MirrorVM with the real Pulumi CLI from a program directory, judged by qemu-img, debugfs, apt-get, docker-registry + skopeo and git", function () {
    this.timeout(900_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer;
    let signing: GpgKeyring;
    let registry: RegistryServer;
    let work: string;
    let output: string;
    let filesDir: string;
    let gitDir: string;
    let image: string;
    let t: ProgramStack;

    const vmState = async (key: string): Promise<string[]> => {
        const state = (await t.stateContent()) as {
            deployment: { resources: { type: string; outputs?: Record<string, unknown> }[] };
        };
        const vm = state.deployment.resources.find((r) => r.type.endsWith(":MirrorVM"));
        assert.ok(vm !== undefined, "no MirrorVM in the state");
        return vm.outputs?.[key] as string[];
    };
    const git = (args: string[], cwd?: string) => run("git", args, cwd === undefined ? {} : { cwd });

    before(async () => {
        work = await makeTempDir("mirrorvm-e2e");
        upstream = await buildRepo({
            distribution: "bookworm",
            architectures: ["amd64"],
            components: { main: [{ name: "app", version: "1.0-1", size: 20_000 }] },
        });
        upstreamServer = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["ed25519"]);
        registry = await startRegistry();
        image = `${registry.host}/src/app:v1`;
        await skopeo(["copy", "--dest-tls-verify=false", await singleLayout("v1", 3000, 7), `docker://${image}`]);

        const root = path.join(work, "www");
        fs.mkdirSync(root);
        output = path.join(work, "images", "mirror.qcow2");
        fs.mkdirSync(path.dirname(output));
        filesDir = path.join(work, "files");
        fs.mkdirSync(path.join(filesDir, "qcow"), { recursive: true });
        fs.writeFileSync(path.join(filesDir, "qcow", "cirros.img"), Buffer.alloc(300_000, 7));
        fs.writeFileSync(path.join(filesDir, "README"), "site images\n");
        gitDir = path.join(work, "model.git");
        const checkout = path.join(work, "model");
        await git(["init", "-q", "-b", "master", checkout]);
        fs.writeFileSync(path.join(checkout, "cluster.yml"), "classes: [cluster.mcp]\n");
        await git(["-c", "user.name=site", "-c", "user.email=site@example.invalid", "-C", checkout, "add", "."]);
        await git([
            "-c",
            "user.name=site",
            "-c",
            "user.email=site@example.invalid",
            "-C",
            checkout,
            "commit",
            "-qm",
            "model",
        ]);
        await git(["clone", "-q", "--bare", checkout, gitDir]);

        const apt: AptMirrorArgs = {
            source: { url: upstreamServer.url, distribution: "bookworm", key: upstream.publicKeyArmored },
            packages: ["app"],
            publish: { root, prefix: "debian" },
        };
        const images: ImageMirrorArgs = {
            images: [image],
            destination: `oci:${path.join(work, "layout")}`,
            tls: { insecureRegistries: [registry.host] },
        };
        t = await createProgramStack("mirrorvm", {
            source: vmProgram,
            config: () => ({
                apt: JSON.stringify(apt),
                images: JSON.stringify(images),
                signingKey: { secret: signing.keys[0]!.privateKeyArmored },
                output,
                files: filesDir,
                git: gitDir,
            }),
        });
    });

    after(async () => {
        await t?.dispose();
        await registry?.stop();
        await upstreamServer?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("up builds a qcow2 data disk whose filesystem holds the APT tree, the registry, the files and the repository", async () => {
        const r = await t.up();
        const out = r.outputs;
        assert.equal(out.path, output);
        assert.equal(out.sha256, await sha256Of(output));
        assert.match(out.contentDigest as string, /^sha256:[0-9a-f]{64}$/);
        assert.deepEqual(
            Object.keys(out.content as object).sort(),
            ["apt debian/dists/bookworm", "files images", "git model.git", `image ${image}`].sort(),
        );
        const info = await qemuImgInfo(output);
        assert.equal(info.format, "qcow2");
        await qemuImgCheck(output);
        const dir = await makeTempDir("mirrorvm-read");
        const { fs: data } = await dataFilesystem(output, dir);
        await fsck(data);
        assert.equal(await debugfs(data, "cat /files/images/README"), "site images\n");
        assert.equal((await debugfs(data, "stat /files/images/qcow/cirros.img")).match(/Size: (\d+)/)?.[1], "300000");
        assert.match(await debugfs(data, "cat /airgap/content.json"), new RegExp(out.contentDigest as string));
        const urls = out.urls as Record<string, string>;
        assert.deepEqual(urls, {
            apt: "http://10.0.0.10/",
            registry: "10.0.0.10:5000",
            git: "http://10.0.0.10:8088/",
            files: "http://10.0.0.10:8078/",
        });
        const hostConfig = out.hostConfig as { registries: unknown[]; apt: { uris: string[]; signedBy: string }[] };
        assert.deepEqual(hostConfig.registries, [
            {
                source: registry.host,
                mirrors: [`10.0.0.10:5000/${registry.host.replace(":", "-")}`],
                mirrorByDigestOnly: true,
                insecure: true,
            },
        ]);
        assert.deepEqual(hostConfig.apt[0]!.uris, ["http://10.0.0.10/debian"]);
        assert.equal(hostConfig.apt[0]!.signedBy, out.publicKey);
    });

    it("apt-get installs from the APT tree read out of the image, signature checked", async () => {
        const { publicKey } = await t.outputs();
        const dir = await makeTempDir("mirrorvm-apt");
        const { fs: data } = await dataFilesystem(output, dir);
        const tree = await copyOut(data, "/apt", dir);
        const server = await startStaticServer(tree);
        const clients: AptClient[] = [];
        try {
            const files = await aptInstallsFrom(
                clients,
                { uri: `${server.url}/debian`, suite: "bookworm", signedBy: publicKey as string },
                "app",
            );
            assert.ok(
                files.some((f) => /^app_1\.0-1_/.test(f)),
                files.join(", "),
            );
        } finally {
            for (const c of clients) await c.close();
            await server.close();
        }
    });

    it("docker-registry serves the registry storage read out of the image with the mirrored digest, by digest and by tag", async () => {
        const { images } = await t.outputs();
        const digest = (images as Record<string, string>)[image]!;
        const dir = await makeTempDir("mirrorvm-registry");
        const { fs: data } = await dataFilesystem(output, dir);
        const storage = await copyOut(data, "/registry", dir);
        const served = await serveRegistryStorage(storage, dir);
        try {
            const repo = `${served.host}/${registry.host.replace(":", "-")}/src/app`;
            assert.equal(digestOf(await skopeoRaw(`docker://${repo}@${digest}`)), digest);
            assert.equal(digestOf(await skopeoRaw(`docker://${repo}:v1`)), digest);
            // skopeo checks every blob's digest while copying.
            await skopeo([
                "copy",
                "--src-tls-verify=false",
                `docker://${repo}@${digest}`,
                `dir:${path.join(dir, "copy")}`,
            ]);
        } finally {
            await served.stop();
        }
    });

    it("git clones the repository read out of the image over HTTP", async () => {
        const dir = await makeTempDir("mirrorvm-git");
        const { fs: data } = await dataFilesystem(output, dir);
        const tree = await copyOut(data, "/git", dir);
        const server = await startStaticServer(tree);
        try {
            const clone = path.join(dir, "clone");
            await git(["clone", "-q", `${server.url}/model.git`, clone]);
            assert.equal(fs.readFileSync(path.join(clone, "cluster.yml"), "utf8"), "classes: [cluster.mcp]\n");
            const want = (await git(["--git-dir", gitDir, "rev-parse", "HEAD"])).stdout.trim();
            assert.equal((await git(["-C", clone, "rev-parse", "HEAD"])).stdout.trim(), want);
        } finally {
            await server.close();
        }
    });

    it("preview --expect-no-changes passes right after up", async () => {
        await t.preview({ expectNoChanges: true });
    });

    it("a file added to a served tree shows in preview as that part changing, and up rebuilds the image", async () => {
        const before = (await t.outputs()).sha256 as string;
        const digestBefore = (await t.outputs()).contentDigest as string;
        fs.writeFileSync(path.join(filesDir, "qcow", "new.img"), Buffer.alloc(1000, 3));
        const preview = await t.preview();
        assert.equal(preview.changes.update, 1, t.lastOutput());
        const text = t.lastOutput();
        assert.match(text, /~ "?files images"?\s*:/, text);
        assert.doesNotMatch(text, /~ "?apt debian\/dists\/bookworm"?\s*:/, text);
        const up = await t.up();
        assert.notEqual(up.outputs.sha256, before);
        assert.notEqual(up.outputs.contentDigest, digestBefore);
        const dir = await makeTempDir("mirrorvm-rebuilt");
        const { fs: data } = await dataFilesystem(output, dir);
        assert.match(await debugfs(data, "stat /files/images/qcow/new.img"), /Size: 1000\b/);
        await t.preview({ expectNoChanges: true });
    });

    it("refresh reports an altered image, and up rebuilds it", async () => {
        const builtDigest = (await t.outputs()).contentDigest as string;
        const handle = fs.openSync(output, "r+");
        fs.writeSync(handle, Buffer.from("tampered"), 0, 8, 70_000);
        fs.closeSync(handle);
        const refreshed = await t.refresh();
        assert.equal(refreshed.changes.update, 1, t.lastOutput());
        // Refresh does not run the program: the drift is in the resource's state, not the stack outputs.
        const drift = await vmState("drift");
        assert.equal(drift.length, 1, JSON.stringify(drift));
        assert.match(drift[0]!, /was altered/);
        await assert.rejects(t.preview({ expectNoChanges: true }), /no changes were expected/);
        const up = await t.up();
        assert.deepEqual(up.outputs.drift, []);
        assert.equal(up.outputs.sha256, await sha256Of(output));
        // The same content gives the same content digest.
        assert.equal(up.outputs.contentDigest, builtDigest);
        await t.preview({ expectNoChanges: true });
    });

    it("destroy removes the image and its state beside it, and nothing else", async () => {
        await t.destroy();
        assert.ok(!fs.existsSync(output), "the image is removed");
        assert.deepEqual(fs.readdirSync(path.dirname(output)), []);
        assert.ok(fs.existsSync(path.join(filesDir, "README")), "the sources are untouched");
        assert.ok(fs.existsSync(path.join(gitDir, "HEAD")));
    });
});
