/**
 * The ImageMirror steps against real docker-registry instances, judged by real skopeo: digests
 * preserved, destination names, digest-only tags, the archive round trip across the air gap,
 * drift and removal, and the rendered registries.conf read by skopeo with the source unreachable.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { basename, join } from "node:path";
import { Agent } from "undici";
import { digestOf } from "../../../provider/oci/digest";
import { readLayout } from "../../../provider/oci/layout";
import {
    type ImageMirrorSpec,
    type ImageMirrorState,
    readImages,
    removeImages,
    resolveImageLock,
    syncImages,
} from "../../../provider/oci/mirror";
import type { RegistryOptions } from "../../../provider/oci/registry_transport";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "./registry_helpers";

/** A registry name no resolver knows; requests to it are sent to the source registry. */
const FAKE_SOURCE = "source.invalid";

async function digestAt(ref: string): Promise<string> {
    return digestOf(await skopeoRaw(ref));
}

async function exists(ref: string): Promise<boolean> {
    return (await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code === 0;
}

/** Bytes of every blob and manifest a docker-registry stores (filesystem driver), each once. */
function storedBytes(dataDir: string): number {
    const blobs = join(dataDir, "docker/registry/v2/blobs");
    let total = 0;
    for (const entry of fs.readdirSync(blobs, { recursive: true })) {
        const file = join(blobs, String(entry));
        if (basename(file) === "data" && fs.statSync(file).isFile()) {
            total += fs.statSync(file).size;
        }
    }
    return total;
}

describe("ImageMirror steps (real docker-registry, judged by skopeo)", function () {
    this.timeout(300_000);
    let source: RegistryServer;
    let mirror: RegistryServer;
    let site: RegistryServer;
    let secured: RegistryServer;
    let fakeSource: Agent;
    const digests: Record<string, string> = {};
    let work: string;
    /** Plain HTTP everywhere; `source.invalid` reaches the source registry. */
    const registry = (domain: string): Partial<RegistryOptions> =>
        domain === FAKE_SOURCE
            ? { dispatcher: fakeSource, insecure: "http", retry: { attempts: 1 } }
            : { retry: { baseDelayMs: 10 } };
    const insecure = () => ({ insecureRegistries: [source.host, mirror.host, site.host, secured.host] });

    before(async () => {
        [source, mirror, site] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
        secured = await startRegistry({ auth: { username: "puller", password: "right-password" } });
        fakeSource = new Agent({
            connect: (_opts, callback) => {
                const socket = net.connect(source.port, "127.0.0.1");
                socket.once("connect", () => callback(null, socket));
                socket.once("error", (err) => callback(err, null));
            },
        });
        work = await makeTempDir("image-mirror");
        const multi = await multiArchLayout("m1");
        const push = async (from: string, to: string) =>
            skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", from, `docker://${to}`]);
        await push(multi.reference, `${source.host}/src/multi:m1`);
        await push(await singleLayout("v1", 3000, 21), `${source.host}/src/plain:v1`);
        await push(await singleLayout("v1", 2000, 22), `${source.host}/src/pinned:v1`);
        await skopeo([
            "copy",
            "--dest-creds",
            "puller:right-password",
            "--dest-tls-verify=false",
            await singleLayout("v1", 1000, 23),
            `docker://${secured.host}/private/app:v1`,
        ]);
        for (const r of ["src/multi:m1", "src/plain:v1", "src/pinned:v1"]) {
            digests[r] = await digestAt(`docker://${source.host}/${r}`);
        }
    });
    after(async () => {
        await Promise.all([source?.stop(), mirror?.stop(), site?.stop(), secured?.stop()]);
        await fakeSource?.close();
        await cleanupAll();
    });

    it("registry → registry keeping the source registry in the path, digests equal, digest-only images tagged", async () => {
        const pinned = `${FAKE_SOURCE}/src/pinned@${digests["src/pinned:v1"]}`;
        const images = [`${FAKE_SOURCE}/src/multi:m1`, pinned];
        const lock = await resolveImageLock({ images, registry });
        assert.deepEqual(lock, { [images[0]!]: digests["src/multi:m1"], [pinned]: digests["src/pinned:v1"] });
        const lines: string[] = [];
        const state = await syncImages(
            { images: lock, destination: `docker://${mirror.host}/site`, tls: insecure(), name: "release" },
            { registry, onProgress: (p) => lines.push(`${p.images.done}/${p.images.total}`) },
        );
        assert.ok(lines.includes("2/2"), "a final progress report");
        const multiAt = `docker://${mirror.host}/site/${FAKE_SOURCE}/src/multi:m1`;
        assert.equal(await digestAt(multiAt), digests["src/multi:m1"]);
        const tag = `sha256-${digests["src/pinned:v1"]!.slice("sha256:".length)}`;
        assert.equal(
            await digestAt(`docker://${mirror.host}/site/${FAKE_SOURCE}/src/pinned:${tag}`),
            digests["src/pinned:v1"],
        );
        assert.deepEqual(state.mirrored, {
            [images[0]!]: `${mirror.host}/site/${FAKE_SOURCE}/src/multi@${digests["src/multi:m1"]}`,
            [pinned]: `${mirror.host}/site/${FAKE_SOURCE}/src/pinned@${digests["src/pinned:v1"]}`,
        });
        // two configs, two own layers, one shared layer; one single image: config + layer
        assert.equal(state.blobCount, 7);
        // Every blob and manifest the mirror now stores, each once: what the state reports.
        assert.equal(state.bytes, storedBytes(mirror.dataDir));
        assert.deepEqual(state.registries, [
            {
                source: FAKE_SOURCE,
                mirrors: [`${mirror.host}/site/${FAKE_SOURCE}`],
                mirrorByDigestOnly: true,
                insecure: true,
            },
        ]);
        assert.match(state.imageDigestMirrorSet, /kind: ImageDigestMirrorSet/);

        // The rendered registries.conf, read by skopeo: pulls by digest from the unreachable source
        // go to the mirror; pulls by tag do not (mirror-by-digest-only).
        const conf = join(work, "registries.conf");
        fs.writeFileSync(conf, state.registriesConf);
        const inspect = (ref: string) =>
            spawnSync("skopeo", ["--registries-conf", conf, "inspect", "--raw", "--retry-times", "0", ref], {
                encoding: "buffer",
                timeout: 60_000,
            });
        const byDigest = inspect(`docker://${FAKE_SOURCE}/src/multi@${digests["src/multi:m1"]}`);
        assert.equal(byDigest.status, 0, byDigest.stderr.toString());
        assert.equal(digestOf(byDigest.stdout), digests["src/multi:m1"]);
        assert.notEqual(inspect(`docker://${FAKE_SOURCE}/src/multi:m1`).status, 0);

        // refresh: a deleted manifest is drift, the image leaves `images`; sync repairs it
        await skopeo(["delete", "--tls-verify=false", `docker://${mirror.host}/site/${FAKE_SOURCE}/src/pinned:${tag}`]);
        const read = await readImages(state, { registry });
        assert.deepEqual(Object.keys(read.images), [images[0]!]);
        assert.equal(read.drift.length, 1);
        assert.match(read.drift[0]!, /src\/pinned@sha256:[0-9a-f]{64}: .*is missing/);
        const repaired = await syncImages(
            { images: lock, destination: `docker://${mirror.host}/site`, tls: insecure(), name: "release" },
            { registry, previous: state.pushed },
        );
        assert.deepEqual((await readImages(repaired, { registry })).drift, []);
        assert.ok(await exists(`docker://${mirror.host}/site/${FAKE_SOURCE}/src/pinned:${tag}`));

        // an image leaving the lock is removed from the mirror; destroy removes the rest
        const fewer = await syncImages(
            {
                images: { [images[0]!]: lock[images[0]!]! },
                destination: `docker://${mirror.host}/site`,
                tls: insecure(),
            },
            { registry, previous: repaired.pushed },
        );
        assert.ok(!(await exists(`docker://${mirror.host}/site/${FAKE_SOURCE}/src/pinned:${tag}`)));
        assert.ok(await exists(multiAt));
        await removeImages(fewer, { registry });
        assert.ok(!(await exists(multiAt)));
    });

    it("registry → registry stripping the source registry", async () => {
        const images = [`${source.host}/src/multi:m1`, `${source.host}/src/plain:v1`];
        const lock = await resolveImageLock({ images, tls: insecure() });
        const state = await syncImages(
            { images: lock, destination: `docker://${mirror.host}`, repositoryPath: "strip-registry", tls: insecure() },
            { registry },
        );
        assert.equal(await digestAt(`docker://${mirror.host}/src/multi:m1`), digests["src/multi:m1"]);
        assert.equal(await digestAt(`docker://${mirror.host}/src/plain:v1`), digests["src/plain:v1"]);
        assert.deepEqual(
            state.registries.map((r) => [r.source, r.mirrors]),
            [[source.host, [mirror.host]]],
        );
        await removeImages(state, { registry });
    });

    it("registry → oci-archive → second registry (across the air gap)", async () => {
        const images = [`${source.host}/src/multi:m1`, `${source.host}/src/pinned@${digests["src/pinned:v1"]}`];
        const lock = await resolveImageLock({ images, tls: insecure() });
        const archive = join(work, "carry", "images.tar");
        const toDisk = await syncImages(
            { images: lock, destination: `oci-archive:${archive}`, tls: insecure() },
            { registry },
        );
        assert.ok(fs.existsSync(archive));
        assert.deepEqual(toDisk.registries, []);
        assert.equal(toDisk.registriesConf, "");
        // skopeo reads the archive by the names the mirror gave
        assert.equal(await digestAt(`oci-archive:${archive}:${source.host}/src/multi:m1`), digests["src/multi:m1"]);

        // the other side: only the archive, resolved offline to the same lock
        const fromDisk = await resolveImageLock({ images, source: `oci-archive:${archive}` });
        assert.deepEqual(fromDisk, lock);
        const onSite = await syncImages(
            {
                images: fromDisk,
                source: `oci-archive:${archive}`,
                destination: `docker://${site.host}/mirror`,
                repositoryPath: "strip-registry",
                tls: insecure(),
            },
            { registry },
        );
        assert.equal(await digestAt(`docker://${site.host}/mirror/src/multi:m1`), digests["src/multi:m1"]);
        const tag = `sha256-${digests["src/pinned:v1"]!.slice("sha256:".length)}`;
        assert.equal(await digestAt(`docker://${site.host}/mirror/src/pinned:${tag}`), digests["src/pinned:v1"]);
        assert.equal(onSite.blobCount, toDisk.blobCount);
        assert.equal(onSite.bytes, toDisk.bytes);

        // refresh of the archive, then destroy removes the file
        assert.deepEqual((await readImages(toDisk)).drift, []);
        await removeImages(toDisk);
        assert.ok(!fs.existsSync(archive));
        assert.equal((await readImages(toDisk)).drift.length, 2);
    });

    it("a cut archive as the source fails naming it, and leaves no temporary directory behind", async () => {
        const images = [`${source.host}/src/plain:v1`];
        const lock = await resolveImageLock({ images, tls: insecure() });
        const archive = join(work, "cut", "images.tar");
        await syncImages({ images: lock, destination: `oci-archive:${archive}`, tls: insecure() }, { registry });
        fs.truncateSync(archive, Math.floor(fs.statSync(archive).size / 2));
        const tmp = await makeTempDir("image-sync-tmp");
        const saved = process.env.TMPDIR;
        process.env.TMPDIR = tmp;
        try {
            await assert.rejects(
                syncImages(
                    {
                        images: lock,
                        source: `oci-archive:${archive}`,
                        destination: `docker://${site.host}/cut`,
                        tls: insecure(),
                    },
                    { registry },
                ),
                (err: Error & { code?: string }) => {
                    assert.equal(err.code, "ERR_PARSE");
                    assert.match(err.message, new RegExp(`${archive.replace(/[.]/g, "\\.")}.*truncated`));
                    return true;
                },
            );
        } finally {
            if (saved === undefined) delete process.env.TMPDIR;
            else process.env.TMPDIR = saved;
        }
        assert.deepEqual(fs.readdirSync(tmp), []);
    });

    it("registry → oci layout, and destroy removes only its own index entries", async () => {
        const dir = join(work, "layout");
        const images = [`${source.host}/src/plain:v1`];
        const lock = await resolveImageLock({ images, tls: insecure() });
        // someone else's image in the same layout
        await skopeo(["copy", await singleLayout("other", 500, 31), `oci:${dir}:someone/else:1`]);
        const state: ImageMirrorState = await syncImages(
            { images: lock, destination: `oci:${dir}`, platforms: ["linux/amd64"], tls: insecure() },
            { registry },
        );
        assert.equal(await digestAt(`oci:${dir}:${source.host}/src/plain:v1`), digests["src/plain:v1"]);
        assert.deepEqual((await readImages(state)).drift, []);
        await removeImages(state);
        const names = (await readLayout(dir)).manifests.map(
            (d) => d.annotations?.["org.opencontainers.image.ref.name"],
        );
        assert.deepEqual(names, ["someone/else:1"]);
    });

    it("a tag that does not exist is an error naming the reference", async () => {
        const missing = `${source.host}/src/plain:no-such-tag`;
        await assert.rejects(
            resolveImageLock({ images: [`${source.host}/src/plain:v1`, missing], tls: insecure() }),
            (err: Error & { code?: string }) =>
                err.code === "ERR_NOT_FOUND" &&
                err.message.includes("no-such-tag") &&
                err.message.includes("src/plain"),
        );
        await assert.rejects(
            resolveImageLock({ images: [missing], source: `oci:${join(work, "layout")}` }),
            /images: oci:.* does not hold .*src\/plain:no-such-tag/,
        );
    });

    it("missing or wrong credentials are clear errors; the right ones work", async () => {
        const images = [`${secured.host}/private/app:v1`];
        const config = (password: string) =>
            JSON.stringify({
                auths: { [secured.host]: { auth: Buffer.from(`puller:${password}`).toString("base64") } },
            });
        await assert.rejects(
            resolveImageLock({ images, tls: insecure() }),
            new RegExp(`authentication required for ${secured.host.replace(/\./g, "\\.")}`),
        );
        await assert.rejects(
            resolveImageLock({ images, tls: insecure(), auth: config("wrong-password") }),
            (err: Error) => /wrong credentials for/.test(err.message) && !err.message.includes("wrong-password"),
        );
        const lock = await resolveImageLock({ images, tls: insecure(), auth: config("right-password") });
        const spec: ImageMirrorSpec = {
            images: lock,
            destination: `docker://${mirror.host}/creds`,
            repositoryPath: "strip-registry",
            tls: insecure(),
        };
        await assert.rejects(
            syncImages(spec, { registry }),
            /mirroring 1 of 1 images .*private\/app:v1: authentication required/s,
        );
        await syncImages({ ...spec, auth: config("right-password") }, { registry });
        assert.equal(await digestAt(`docker://${mirror.host}/creds/private/app:v1`), lock[images[0]!]);
    });
});
