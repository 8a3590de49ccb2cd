/**
 * Images written as distribution's filesystem storage, from each source kind (a registry, an OCI
 * layout, an OCI archive, the last two made by the ImageMirror engine), then served read-only by
 * a real Debian `docker-registry` from that tree and judged by real skopeo: manifests by digest
 * and by tag byte for byte as at the source, child manifests of an index by digest, and whole
 * copies (skopeo checks every blob's digest).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hasCode } from "../../../provider/errors";
import { digestOf } from "../../../provider/oci/digest";
import { parseManifest } from "../../../provider/oci/manifest";
import { resolveImageLock, syncImages } from "../../../provider/oci/mirror";
import {
    registryStoragePaths,
    registryStorageSize,
    type StorageImage,
    writeRegistryStorage,
} from "../../../provider/vm/registry_storage";
import { DOCKER_REGISTRY_BIN, getStatus, type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { type ManagedProcess, startProcess, startWithFreePort, waitUntil } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "../oci/registry_helpers";

/** A read-only docker-registry serving the storage tree `root`. */
interface StorageServer {
    readonly host: string;
    stop(): Promise<void>;
}

async function serveStorage(root: string): Promise<StorageServer> {
    const dir = await makeTempDir("serve-storage");
    return startWithFreePort(async (port) => {
        const config = {
            version: "0.1",
            log: { level: "info" },
            storage: {
                filesystem: { rootdirectory: root },
                maintenance: { readonly: { enabled: true }, uploadpurging: { enabled: false } },
            },
            http: { addr: `127.0.0.1:${port}`, secret: "pulumi-airgap-test-secret" },
        };
        const configPath = join(dir, "config.yml");
        await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
        const env: NodeJS.ProcessEnv = {};
        for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_")) env[k] = v;
        const p: ManagedProcess = startProcess(DOCKER_REGISTRY_BIN, ["serve", configPath], {
            name: "docker-registry (read-only)",
            cwd: dir,
            env,
        });
        try {
            await waitUntil(
                async () =>
                    p.log().includes(`listening on 127.0.0.1:${port}`) &&
                    (await getStatus(`http://127.0.0.1:${port}/v2/`)) === 200,
                { what: "the read-only docker-registry to answer", process: p },
            );
        } catch (e) {
            await p.stop();
            throw e;
        }
        return { host: `127.0.0.1:${port}`, stop: () => p.stop() };
    });
}

/** Every file below `dir`, relative to it. */
function filesBelow(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
        .sort();
}

/** Bytes of the blob data files (every blob and manifest, each once). */
function storedBytes(root: string): number {
    const blobs = join(root, "docker/registry/v2/blobs");
    return filesBelow(blobs)
        .filter((f) => f.endsWith("/data"))
        .reduce((n, f) => n + fs.statSync(join(blobs, f)).size, 0);
}

async function inspectable(ref: string): Promise<boolean> {
    return (await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code === 0;
}

describe("Registry storage written for the mirror VM (served by docker-registry, judged by skopeo)", function () {
    this.timeout(300_000);
    let source: RegistryServer;
    let work: string;
    /** Source repository → { digest, bytes } of its top manifest, as the source registry serves it. */
    const top: Record<string, { digest: string; bytes: Buffer }> = {};
    /** Child manifests of src/multi (amd64, arm64). */
    let children: string[] = [];
    let layoutMirrored: Record<string, string> = {};
    let archiveMirrored: Record<string, string> = {};
    let amd64OnlyMirrored: Record<string, string> = {};
    const registry = { insecure: "http" as const, retry: { attempts: 1 } };

    before(async () => {
        source = await startRegistry();
        work = await makeTempDir("registry-storage");
        const push = async (from: string, to: string, extra: string[] = ["--all", "--preserve-digests"]) =>
            skopeo(["copy", ...extra, "--dest-tls-verify=false", from, `docker://${source.host}/${to}`]);
        await push((await multiArchLayout("m1")).reference, "src/multi:m1");
        await push(await singleLayout("v1", 3000, 31), "src/plain:v1");
        // A Docker schema 2 manifest (skopeo converts the OCI one while pushing).
        await push(await singleLayout("v1", 2000, 32), "src/docker:v1", ["--format", "v2s2"]);
        for (const r of ["src/multi", "src/plain", "src/docker"]) {
            const bytes = await skopeoRaw(`docker://${source.host}/${r}:${r === "src/multi" ? "m1" : "v1"}`);
            top[r] = { digest: digestOf(bytes), bytes };
        }
        const index = parseManifest(top["src/multi"]!.bytes);
        assert.equal(index.kind, "index");
        children = index.kind === "index" ? index.manifests.map((m) => m.digest) : [];
        assert.equal(children.length, 2);
        assert.match(
            (parseManifest(top["src/docker"]!.bytes) as { mediaType: string }).mediaType,
            /docker\.distribution\.manifest\.v2/,
        );

        // The layout and archive a real ImageMirror run writes, and what it reports as mirrored.
        const images = [`${source.host}/src/multi:m1`, `${source.host}/src/plain:v1`];
        const tls = { insecureRegistries: [source.host] };
        const lock = await resolveImageLock({ images, tls });
        const log = () => {};
        layoutMirrored = (await syncImages({ images: lock, destination: `oci:${work}/layout`, tls }, { log })).mirrored;
        archiveMirrored = (
            await syncImages({ images: lock, destination: `oci-archive:${work}/carry/images.tar`, tls }, { log })
        ).mirrored;
        amd64OnlyMirrored = (
            await syncImages(
                {
                    images: { [images[0]!]: lock[images[0]!]! },
                    destination: `oci:${work}/amd64`,
                    tls,
                    platforms: ["linux/amd64"],
                },
                { log },
            )
        ).mirrored;
    });
    after(async () => {
        await source?.stop();
        await cleanupAll();
    });

    /** Checks, through a read-only registry serving `root`, that each image is there as at the source. */
    async function judge(root: string, images: readonly StorageImage[]): Promise<void> {
        const served = await serveStorage(root);
        try {
            for (const image of images) {
                const src = Object.values(top).find((t) => t.digest === image.digest);
                assert.ok(src !== undefined, `test image ${image.digest}`);
                const at = `docker://${served.host}/${image.repository}`;
                const byDigest = await skopeoRaw(`${at}@${image.digest}`);
                assert.ok(byDigest.equals(src.bytes), `${image.repository}@${image.digest}: same bytes as the source`);
                if (image.tag !== undefined) {
                    assert.ok(
                        (await skopeoRaw(`${at}:${image.tag}`)).equals(src.bytes),
                        `${image.repository}:${image.tag}`,
                    );
                    const tags = JSON.parse((await skopeo(["list-tags", "--tls-verify=false", at])).stdout) as {
                        Tags: string[];
                    };
                    assert.ok(tags.Tags.includes(image.tag), `tag ${image.tag} listed`);
                }
                const parsed = parseManifest(src.bytes);
                if (parsed.kind === "index") {
                    for (const child of parsed.manifests) {
                        const bytes = await skopeoRaw(`${at}@${child.digest}`);
                        assert.equal(digestOf(bytes), child.digest, `child ${child.digest}`);
                    }
                }
                const out = await makeTempDir("skopeo-dir");
                // skopeo checks the digest of every blob it copies.
                await skopeo([
                    "copy",
                    "--all",
                    "--src-tls-verify=false",
                    `${at}@${image.digest}`,
                    `dir:${join(out, "image")}`,
                ]);
                assert.ok(fs.readFileSync(join(out, "image", "manifest.json")).equals(src.bytes));
            }
        } finally {
            await served.stop();
        }
    }

    it("from a registry (ImageMirror's mirrored form and docker://): an index with its children, OCI and Docker manifests", async () => {
        const root = join(await makeTempDir("storage"), "registry");
        const images: StorageImage[] = [
            {
                location: `${source.host}/src/multi@${top["src/multi"]!.digest}`,
                repository: "quay.io/foo/multi",
                tag: "m1",
                digest: top["src/multi"]!.digest,
            },
            {
                location: `docker://${source.host}/src/plain:v1@${top["src/plain"]!.digest}`,
                repository: "quay.io/foo/plain",
                tag: "v1",
                digest: top["src/plain"]!.digest,
            },
            // By digest only: no tag.
            {
                location: `${source.host}/src/docker@${top["src/docker"]!.digest}`,
                repository: "docker.io/library/app",
                digest: top["src/docker"]!.digest,
            },
        ];
        const size = await registryStorageSize(images, { registry });
        const started = Date.now();
        const lines: string[] = [];
        const result = await writeRegistryStorage(root, images, { registry, log: (l) => lines.push(l) });
        console.log(`      (wrote ${result.bytes} bytes from a registry in ${Date.now() - started} ms)`);
        // index + 2 children, plain, docker; configs: 2 + 1 + 1, layers: 2 own + 1 shared + 1 + 1
        assert.equal(result.manifests, 5);
        assert.equal(result.blobs, 9);
        assert.equal(result.bytes, size);
        assert.equal(result.bytesWritten, size);
        assert.equal(storedBytes(root), size, "every blob and manifest stored once, nothing else");
        assert.equal(lines.filter((l) => l.startsWith("stored ")).length, 3);

        // Link files as distribution writes them: the digest, no newline.
        const current = registryStoragePaths.tagCurrentLink(root, "quay.io/foo/multi", "m1");
        assert.equal(fs.readFileSync(current, "utf8"), top["src/multi"]!.digest);
        for (const child of children) {
            assert.equal(
                fs.readFileSync(registryStoragePaths.revisionLink(root, "quay.io/foo/multi", child), "utf8"),
                child,
            );
        }
        assert.deepEqual(
            filesBelow(root).filter((f) => f.includes(".tmp-")),
            [],
            "no temporary file left",
        );
        await judge(root, images);

        // Written again: nothing rewritten, the blob files are the same files.
        const someBlob = registryStoragePaths.blobData(root, children[0]!);
        const before = fs.statSync(someBlob);
        const again = await writeRegistryStorage(root, images, { registry });
        assert.equal(again.bytesWritten, 0);
        const after = fs.statSync(someBlob);
        assert.equal(after.ino, before.ino);
        assert.equal(after.mtimeMs, before.mtimeMs);

        // A blob altered in the storage is found and replaced.
        const layer = parseManifest(top["src/plain"]!.bytes);
        assert.equal(layer.kind, "manifest");
        const layerDesc = layer.kind === "manifest" ? layer.layers[0]! : undefined;
        const layerFile = registryStoragePaths.blobData(root, layerDesc!.digest);
        const bytes = fs.readFileSync(layerFile);
        bytes[10] = bytes[10]! ^ 0xff;
        fs.writeFileSync(layerFile, bytes);
        const repaired = await writeRegistryStorage(root, images, { registry });
        assert.equal(repaired.bytesWritten, layerDesc!.size);
        assert.equal(digestOf(fs.readFileSync(layerFile)), layerDesc!.digest);
    });

    it("from an OCI layout ImageMirror wrote, added to a storage that holds other images", async () => {
        const root = await makeTempDir("storage");
        const multiKey = `${source.host}/src/multi:m1`;
        const plainKey = `${source.host}/src/plain:v1`;
        assert.match(layoutMirrored[multiKey]!, /^oci:.*:127\.0\.0\.1:\d+\/src\/multi:m1@sha256:/);
        const first: StorageImage[] = [
            {
                location: layoutMirrored[plainKey]!,
                repository: "quay.io/foo/plain",
                tag: "v1",
                digest: top["src/plain"]!.digest,
            },
        ];
        await writeRegistryStorage(root, first);
        const second: StorageImage[] = [
            {
                location: layoutMirrored[multiKey]!,
                repository: "quay.io/foo/multi",
                tag: "m1",
                digest: top["src/multi"]!.digest,
            },
            // The same image under a second name and tag: blobs stored once, linked twice.
            {
                location: layoutMirrored[plainKey]!,
                repository: "site/plain",
                tag: "stable",
                digest: top["src/plain"]!.digest,
            },
        ];
        const added = await writeRegistryStorage(root, second);
        const plainSize = await registryStorageSize(first);
        assert.equal(added.bytesWritten, added.bytes - plainSize, "the plain image's blobs were not written again");
        assert.equal(storedBytes(root), added.bytes);
        await judge(root, [...first, ...second]);
    });

    it("from an OCI archive ImageMirror wrote", async () => {
        const root = await makeTempDir("storage");
        const multiKey = `${source.host}/src/multi:m1`;
        assert.match(archiveMirrored[multiKey]!, /^oci-archive:.*images\.tar:/);
        const images: StorageImage[] = [
            {
                location: archiveMirrored[multiKey]!,
                repository: "quay.io/foo/multi",
                tag: "m1",
                digest: top["src/multi"]!.digest,
            },
            {
                location: archiveMirrored[`${source.host}/src/plain:v1`]!,
                repository: "quay.io/foo/plain",
                tag: "v1",
                digest: top["src/plain"]!.digest,
            },
        ];
        const started = Date.now();
        const result = await writeRegistryStorage(root, images);
        console.log(`      (wrote ${result.bytes} bytes from an archive in ${Date.now() - started} ms)`);
        assert.equal(storedBytes(root), result.bytes);
        await judge(root, images);
    });

    it("an index whose source lacks a child: the children it holds are stored, the index as it was", async () => {
        const key = `${source.host}/src/multi:m1`;
        const layoutDir = join(work, "layout");
        // ImageMirror for linux/amd64 only keeps that child, under its own digest.
        const amd = amd64OnlyMirrored[key]!;
        assert.ok(amd.endsWith(`@${children[0]}`), amd);
        // A layout holding the index but not its arm64 child.
        const partial = join(await makeTempDir("partial-layout"), "layout");
        fs.cpSync(layoutDir, partial, { recursive: true });
        fs.rmSync(join(partial, "blobs", ...children[1]!.split(":")));
        const root = await makeTempDir("storage");
        const lines: string[] = [];
        const images: StorageImage[] = [
            {
                location: layoutMirrored[key]!.replace(layoutDir, partial),
                repository: "quay.io/foo/multi",
                tag: "m1",
                digest: top["src/multi"]!.digest,
            },
            { location: amd, repository: "quay.io/foo/multi-amd64", tag: "m1", digest: children[0]! },
        ];
        const result = await writeRegistryStorage(root, images, { log: (l) => lines.push(l) });
        assert.equal(result.manifests, 2, "the index and its amd64 child");
        assert.deepEqual(
            lines.filter((l) => l.includes("is not at the source")),
            [
                `image quay.io/foo/multi:m1@${top["src/multi"]!.digest}: child manifest ${children[1]} is not at the source; not stored`,
            ],
        );
        assert.equal(storedBytes(root), result.bytes);
        const served = await serveStorage(root);
        try {
            const at = `docker://${served.host}/quay.io/foo/multi`;
            assert.ok((await skopeoRaw(`${at}:m1`)).equals(top["src/multi"]!.bytes));
            assert.equal(digestOf(await skopeoRaw(`${at}@${children[0]}`)), children[0]);
            assert.ok(!(await inspectable(`${at}@${children[1]}`)));
            const out = await makeTempDir("skopeo-dir");
            await skopeo([
                "copy",
                "--override-arch",
                "amd64",
                "--src-tls-verify=false",
                `${at}:m1`,
                `dir:${join(out, "image")}`,
            ]);
            assert.equal(digestOf(fs.readFileSync(join(out, "image", "manifest.json"))), children[0]);
            const single = `docker://${served.host}/quay.io/foo/multi-amd64:m1`;
            assert.equal(digestOf(await skopeoRaw(single)), children[0]);
            await skopeo(["copy", "--src-tls-verify=false", single, `dir:${join(out, "single")}`]);
        } finally {
            await served.stop();
        }
    });

    it("refuses an unparsable location naming it, before writing anything", async () => {
        const root = join(await makeTempDir("storage"), "root");
        const images: StorageImage[] = [
            {
                location: layoutMirrored[`${source.host}/src/plain:v1`]!,
                repository: "a",
                digest: top["src/plain"]!.digest,
            },
            { location: "ftp://example/x", repository: "b", digest: top["src/plain"]!.digest },
        ];
        for (const attempt of [() => writeRegistryStorage(root, images), () => registryStorageSize(images)]) {
            await assert.rejects(attempt, (err: Error & { argument?: string }) => {
                assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"), err.message);
                assert.equal(err.argument, "images[1].location");
                assert.match(err.message, /^images\[1\]\.location: .*"ftp:\/\/example\/x"/);
                return true;
            });
        }
        assert.ok(!fs.existsSync(root), "nothing written");
    });

    it("a blob missing or altered at the source: the error names the image and the blob, and the image gets no link", async () => {
        const multiKey = `${source.host}/src/multi:m1`;
        const layoutDir = join(work, "layout");
        const index = parseManifest(top["src/multi"]!.bytes);
        assert.equal(index.kind, "index");
        const arm = parseManifest(fs.readFileSync(join(layoutDir, "blobs", ...children[1]!.split(":"))));
        assert.equal(arm.kind, "manifest");
        const armLayer = arm.kind === "manifest" ? arm.layers[arm.layers.length - 1]! : undefined;

        for (const fault of ["missing", "altered"] as const) {
            const broken = join(await makeTempDir("broken-layout"), "layout");
            fs.cpSync(layoutDir, broken, { recursive: true });
            const blobFile = join(broken, "blobs", ...armLayer!.digest.split(":"));
            if (fault === "missing") {
                fs.rmSync(blobFile);
            } else {
                const bytes = fs.readFileSync(blobFile);
                bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
                fs.writeFileSync(blobFile, bytes);
            }
            const root = await makeTempDir("storage");
            const location = layoutMirrored[multiKey]!.replace(layoutDir, broken);
            const images: StorageImage[] = [
                // An image written before the broken one stays served.
                {
                    location: layoutMirrored[`${source.host}/src/plain:v1`]!.replace(layoutDir, broken),
                    repository: "quay.io/foo/plain",
                    tag: "v1",
                    digest: top["src/plain"]!.digest,
                },
                { location, repository: "quay.io/foo/multi", tag: "m1", digest: top["src/multi"]!.digest },
            ];
            await assert.rejects(writeRegistryStorage(root, images), (err: Error) => {
                assert.ok(hasCode(err, fault === "missing" ? "ERR_NOT_FOUND" : "ERR_VERIFICATION"), err.message);
                assert.ok(err.message.includes(`image quay.io/foo/multi:m1@${top["src/multi"]!.digest}`), err.message);
                assert.ok(err.message.includes(`blob ${armLayer!.digest}`), err.message);
                return true;
            });
            const repo = registryStoragePaths.repository(root, "quay.io/foo/multi");
            assert.deepEqual(filesBelow(repo), [], `${fault}: no link for the broken image`);
            assert.ok(!fs.existsSync(registryStoragePaths.blobData(root, armLayer!.digest)), `${fault}: no blob data`);
            assert.deepEqual(
                filesBelow(root).filter((f) => f.includes(".tmp-")),
                [],
                "no temporary file left",
            );
            const served = await serveStorage(root);
            try {
                assert.ok(!(await inspectable(`docker://${served.host}/quay.io/foo/multi:m1`)));
                assert.ok(await inspectable(`docker://${served.host}/quay.io/foo/plain:v1`));
            } finally {
                await served.stop();
            }
        }
    });

    it("an aborted write stops without linking anything", async () => {
        const root = await makeTempDir("storage");
        const key = `${source.host}/src/multi:m1`;
        const images: StorageImage[] = [
            {
                location: layoutMirrored[key]!,
                repository: "quay.io/foo/multi",
                tag: "m1",
                digest: top["src/multi"]!.digest,
            },
        ];
        const controller = new AbortController();
        const lines: string[] = [];
        const writing = writeRegistryStorage(root, images, {
            signal: controller.signal,
            log: (l) => lines.push(l),
        });
        controller.abort();
        await assert.rejects(writing, (err: Error) => {
            assert.ok(hasCode(err, "ERR_IO"), err.message);
            assert.match(err.message, /aborted/);
            return true;
        });
        assert.deepEqual(lines, []);
        assert.deepEqual(filesBelow(registryStoragePaths.repository(root, "quay.io/foo/multi")), []);
        assert.deepEqual(
            filesBelow(root).filter((f) => f.includes(".tmp-")),
            [],
        );
    });

    it("a digest the source does not hold is named", async () => {
        const root = await makeTempDir("storage");
        const missing = `sha256:${"0".repeat(64)}`;
        const layout = layoutMirrored[`${source.host}/src/plain:v1`]!.replace(/@sha256:[0-9a-f]{64}$/, "");
        await assert.rejects(
            writeRegistryStorage(root, [{ location: layout, repository: "a/b", tag: "v1", digest: missing }]),
            (err: Error) => {
                assert.ok(hasCode(err, "ERR_NOT_FOUND"), err.message);
                assert.match(err.message, new RegExp(`image a/b:v1@${missing}.*manifest ${missing}`));
                return true;
            },
        );
        assert.deepEqual(filesBelow(root), []);
    });
});
