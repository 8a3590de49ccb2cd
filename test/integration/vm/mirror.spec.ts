import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { syncMirror } from "../../../provider/apt/mirror";
import { sha256OfFile } from "../../../provider/store/hashcache";
import { buildMirrorVm, type MirrorVmSpec, readMirrorVm, removeMirrorVm } from "../../../provider/vm/mirror";
import { onePackageSite, type OnePackageSite } from "../../harness/fixtures/aptsite";
import { dataFilesystem, debugfs, listDir } from "../../harness/fixtures/vmimage";
import { runAndKill } from "../../harness/kill";
import { run } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout } from "../oci/registry_helpers";

/**
 * The MirrorVM engine on bad inputs and faults: each refused with an error naming the argument,
 * and never a half-written image at `output`.
 */
describe("MirrorVM build: bad inputs and faults", function () {
    this.timeout(600_000);

    let site: OnePackageSite;
    let root: string;
    let layoutDir: string;
    let indexDigest: string;
    let filesDir: string;
    const ref = "quay.io/site/multi:m1";

    const spec = (output: string, extra: Partial<MirrorVmSpec> = {}): MirrorVmSpec => ({
        name: "mirror",
        output,
        apt: [{ root, prefix: "debian", distribution: "bookworm" }],
        images: [{ images: { [ref]: indexDigest }, mirrored: { [ref]: `oci:${layoutDir}:m1@${indexDigest}` } }],
        files: [{ source: filesDir, path: "images" }],
        git: [],
        ...extra,
    });
    const quiet = { log: () => {} };

    before(async () => {
        site = await onePackageSite();
        root = await makeTempDir("vm-apt-root");
        await syncMirror(await site.spec(root));
        const layout = await multiArchLayout("m1");
        layoutDir = layout.reference.slice("oci:".length, -":m1".length);
        const index = JSON.parse(fs.readFileSync(path.join(layoutDir, "index.json"), "utf8"));
        indexDigest = index.manifests[0].digest;
        filesDir = await makeTempDir("vm-files");
        fs.writeFileSync(path.join(filesDir, "a.txt"), "A\n");
    });

    after(async () => {
        await site?.close();
        await cleanupAll();
    });

    async function outDir(): Promise<string> {
        return makeTempDir("vm-out");
    }

    it("builds a data disk holding the suite, the registry storage and the files; read and remove work", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        const state = await buildMirrorVm(spec(output), quiet);
        assert.equal(state.sha256, await sha256OfFile(output));
        const read = await makeTempDir("vm-read");
        const { fs: data } = await dataFilesystem(output, read);
        assert.deepEqual(await listDir(data, "/"), ["airgap", "apt", "files", "git", "lost+found", "registry"]);
        assert.equal(await debugfs(data, "cat /files/images/a.txt"), "A\n");
        assert.deepEqual((await readMirrorVm(state)).drift, []);
        // Built again from the same content: the same content digest, and the same bytes.
        const again = await buildMirrorVm(spec(output), { ...quiet, owned: true });
        assert.equal(again.contentDigest, state.contentDigest);
        assert.equal(again.sha256, state.sha256, "two builds of the same content give the same image");
        await removeMirrorVm(again);
        assert.deepEqual(fs.readdirSync(dir), []);
    });

    it("builds as an unprivileged user, with no root, no mount and no VM", async function () {
        if (process.getuid?.() !== 0) {
            // Already unprivileged: every other test here is the proof.
            this.skip();
        }
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        // The inputs readable by all, the output directory owned by the user who builds.
        for (const d of [root, layoutDir, filesDir]) await run("chmod", ["-R", "a+rX", d]);
        await run("chmod", ["a+x", path.dirname(root), path.dirname(layoutDir), path.dirname(filesDir)]);
        await run("chown", ["65534:65534", dir]);
        await run("chmod", ["a+rx", path.dirname(dir)]);
        const script = `require(${JSON.stringify(path.resolve(__dirname, "../../../provider/vm/mirror.js"))})
            .buildMirrorVm(${JSON.stringify(spec(output))}, { log: () => {} })
            .then((s) => console.log(s.sha256), (e) => { console.error(e.message); process.exit(1); });`;
        const r = await run(
            "setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script],
            {
                env: { PATH: process.env.PATH, HOME: "/nonexistent" },
                timeoutMs: 300_000,
            },
        );
        assert.equal(r.stdout.trim(), await sha256OfFile(output));
        assert.equal(fs.statSync(output).uid, 65534, "written by the unprivileged user");
    });

    it("refuses a baseImage that is missing, not a disk image, or of another format, naming baseImage", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        const text = path.join(dir, "notes.txt");
        fs.writeFileSync(text, "not an image\n");
        const vmdk = path.join(dir, "base.vmdk");
        await run("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "64M"]);
        for (const [base, problem] of [
            [path.join(dir, "absent.qcow2"), /does not exist|no such|missing/i],
            [text, /partition table|not a disk image|bootable/i],
            [vmdk, /vmdk/],
        ] as const) {
            await assert.rejects(
                buildMirrorVm(spec(output, { baseImage: base }), quiet),
                (err: Error & { argument?: string }) => {
                    assert.equal(err.argument, "baseImage", err.message);
                    assert.match(err.message, problem);
                    return true;
                },
            );
        }
        assert.deepEqual(fs.readdirSync(dir).sort(), ["base.vmdk", "notes.txt"], "nothing written beside output");
    });

    it("refuses an output whose directory does not exist, or is not a directory, naming output", async () => {
        const dir = await outDir();
        fs.writeFileSync(path.join(dir, "file"), "x");
        for (const output of [
            path.join(dir, "missing", "mirror.qcow2"),
            path.join(dir, "file", "mirror.qcow2"),
            "relative.qcow2",
        ]) {
            await assert.rejects(buildMirrorVm(spec(output), quiet), (err: Error & { argument?: string }) => {
                assert.equal(err.argument, "output", err.message);
                return true;
            });
        }
    });

    it("refuses content larger than maxSize before building anything", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        await assert.rejects(
            buildMirrorVm(spec(output, { maxSize: "10K" }), quiet),
            (err: Error & { argument?: string }) => {
                assert.equal(err.argument, "maxSize");
                assert.match(err.message, /above maxSize 10K/);
                assert.match(err.message, /apt debian\/dists\/bookworm|image /);
                return true;
            },
        );
        assert.deepEqual(fs.readdirSync(dir), [], "nothing written beside output");
        await assert.rejects(buildMirrorVm(spec(output, { maxSize: "lots" }), quiet), /maxSize/);
    });

    it("refuses an APT tree missing a pool file, naming apt[0] and the file, and keeps the previous image", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        const state = await buildMirrorVm(spec(output), quiet);
        const broken = await makeTempDir("vm-apt-broken");
        await syncMirror(await site.spec(broken));
        const pool = path.join(broken, "debian", "pool");
        const deb = (await run("find", [pool, "-name", "*.deb"])).stdout.trim().split("\n")[0]!;
        fs.rmSync(deb);
        await assert.rejects(
            buildMirrorVm(
                { ...spec(output), apt: [{ root: broken, prefix: "debian", distribution: "bookworm" }] },
                { ...quiet, owned: true },
            ),
            (err: Error & { argument?: string }) => {
                assert.equal(err.argument, "apt[0]");
                assert.match(err.message, new RegExp(path.basename(deb).replace(/[.+]/g, "\\$&")));
                return true;
            },
        );
        assert.equal(await sha256OfFile(output), state.sha256, "the previous image is intact");
    });

    it("refuses an image whose blob is missing from its source, naming the blob, and keeps the previous image", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        const state = await buildMirrorVm(spec(output), quiet);
        const layout = await multiArchLayout("m1", "other");
        const otherDir = layout.reference.slice("oci:".length, -":m1".length);
        const digest = JSON.parse(fs.readFileSync(path.join(otherDir, "index.json"), "utf8")).manifests[0].digest;
        fs.rmSync(path.join(otherDir, "blobs", "sha256", layout.shared.slice("sha256:".length)));
        await assert.rejects(
            buildMirrorVm(
                {
                    ...spec(output),
                    images: [{ images: { [ref]: digest }, mirrored: { [ref]: `oci:${otherDir}:m1@${digest}` } }],
                },
                { ...quiet, owned: true },
            ),
            (err: Error) => {
                assert.match(err.message, new RegExp(layout.shared.slice("sha256:".length, 20)));
                return true;
            },
        );
        assert.equal(await sha256OfFile(output), state.sha256, "the previous image is intact");
    });

    it("a build killed at any point leaves the previous image intact and no temporary file beside it; the next run finishes", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        const first = await buildMirrorVm(spec(output), quiet);
        // A different content, so that a finished build would change the image.
        fs.writeFileSync(path.join(filesDir, "b.txt"), "B\n");
        try {
            const specFile = path.join(dir, "..", `spec-${path.basename(dir)}.json`);
            fs.writeFileSync(specFile, JSON.stringify(spec(output)));
            const module = path.resolve(__dirname, "../../../provider/vm/mirror.js");
            let killedBeforeTheEnd = 0;
            for (const afterMs of [150, 400, 800, 1200, 1800, 2500]) {
                await runAndKill(module, "buildMirrorVm", specFile, afterMs);
                const now = await sha256OfFile(output);
                if (now === first.sha256) killedBeforeTheEnd++;
                // At most the temporary image the killed run was writing: the next build removes it.
                assert.deepEqual(
                    fs.readdirSync(dir).filter((n) => !/^mirror\.qcow2(\.airgap|\.[0-9a-f]{12}\.tmp.*)?$/.test(n)),
                    [],
                    `after a kill at ${afterMs} ms`,
                );
                await run("qemu-img", ["check", output]);
            }
            assert.ok(killedBeforeTheEnd > 0, "at least one kill landed before the image was replaced");
            // Whatever the kills left, the next build (as an update: the resource owns the output) finishes.
            const next = await buildMirrorVm(spec(output), { ...quiet, owned: true });
            assert.equal(await sha256OfFile(output), next.sha256);
            assert.deepEqual(
                fs.readdirSync(`${output}.airgap`).filter((n) => n.startsWith("build-")),
                [],
            );
            assert.deepEqual(fs.readdirSync(dir).sort(), ["mirror.qcow2", "mirror.qcow2.airgap"]);
        } finally {
            fs.rmSync(path.join(filesDir, "b.txt"), { force: true });
        }
    });

    it("refuses to overwrite an image it did not write, and a second build of the same output at once", async () => {
        const dir = await outDir();
        const output = path.join(dir, "mirror.qcow2");
        fs.writeFileSync(output, "someone else's image");
        await assert.rejects(
            buildMirrorVm(spec(output), quiet),
            (err: Error & { code?: string; argument?: string }) => {
                assert.equal(err.code, "ERR_CONFLICT");
                assert.equal(err.argument, "output");
                return true;
            },
        );
        assert.equal(fs.readFileSync(output, "utf8"), "someone else's image");
        fs.rmSync(output);
        const results = await Promise.allSettled([
            buildMirrorVm(spec(output), quiet),
            buildMirrorVm(spec(output), quiet),
        ]);
        const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
        assert.equal(failed.length, 1, JSON.stringify(results.map((r) => r.status)));
        assert.equal((failed[0]!.reason as { code?: string }).code, "ERR_CONFLICT");
        const ok = results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ sha256: string }>;
        assert.equal(await sha256OfFile(output), ok.value.sha256);
    });
});
