/**
 * ImageMirror removes only what it created: against a real docker-registry (deletes enabled; it
 * refuses deleting a tag alone) and real OCI layouts, judged by skopeo.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { digestOf } from "../../../provider/oci/digest";
import { readLayout } from "../../../provider/oci/layout";
import {
    type ImageMirrorState,
    removeImages,
    resolveImageLock,
    type SyncImagesOptions,
    syncImages,
} from "../../../provider/oci/mirror";
import { layoutLockFile } from "../../../provider/oci/ownership";
import { takeLock } from "../../../provider/store/lockfile";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "./registry_helpers";

describe("ImageMirror ownership (real docker-registry and layouts, judged by skopeo)", function () {
    this.timeout(300_000);
    let source: RegistryServer;
    let mirror: RegistryServer;
    let work: string;
    let app: string;
    let multi: string;
    let other: string;
    const digests: Record<string, string> = {};
    const logs: string[] = [];
    const registry = { retry: { baseDelayMs: 10 } };
    const log = (line: string) => logs.push(line);

    const exists = async (ref: string) =>
        (await skopeo(["inspect", "--raw", "--tls-verify=false", ref], false)).code === 0;
    const digestAt = async (ref: string) => digestOf(await skopeoRaw(ref));
    const copy = (from: string, to: string) =>
        skopeo(["copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", from, to]);
    const tls = () => ({ insecureRegistries: [source.host, mirror.host] });
    const sync = async (images: string[], destination: string, options: SyncImagesOptions = {}) =>
        syncImages(
            {
                images: await resolveImageLock({ images, tls: tls() }),
                destination,
                repositoryPath: "strip-registry",
                tls: tls(),
            },
            { registry, log, ...options },
        );
    const destroy = (state: ImageMirrorState) => removeImages({ ...state, tls: tls() }, { registry, log });

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        work = await makeTempDir("ownership");
        app = `${source.host}/src/app:v1`;
        multi = `${source.host}/src/multi:m1`;
        other = `${source.host}/src/other:v1`;
        await copy(await singleLayout("v1", 3000, 51), `docker://${app}`);
        await copy((await multiArchLayout("m1", "ownership")).reference, `docker://${multi}`);
        await copy(await singleLayout("v1", 2000, 52), `docker://${other}`);
        for (const r of [app, multi, other]) {
            digests[r] = await digestAt(`docker://${r}`);
        }
    });
    beforeEach(() => {
        logs.length = 0;
    });
    after(async () => {
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("a manifest at the destination before the mirror ran is not deleted by destroy, under its tag or another", async () => {
        const at = `docker://${mirror.host}/pre/src/app:v1`;
        const pre = `docker://${mirror.host}/pre/src/app:pre`;
        await copy(`docker://${app}`, at);
        await copy(`docker://${app}`, pre);
        const state = await sync([app], `docker://${mirror.host}/pre`);
        assert.deepEqual(state.pushed[0]!.created, { v: 1, tag: false, manifests: [] });
        await destroy(state);
        assert.equal(await digestAt(at), digests[app]);
        assert.equal(await digestAt(pre), digests[app]);
        assert.ok(
            logs.some((l) => l.includes(":v1: the tag was there before")),
            logs.join("\n"),
        );

        // The same manifest under a new tag: the tag is the mirror's, the manifest is not.
        const fresh = await sync([app], `docker://${mirror.host}/pre2`);
        assert.deepEqual(fresh.pushed[0]!.created, { v: 1, tag: true, manifests: [digests[app]] });
        const fresh2 = `docker://${mirror.host}/pre2/src/app:v1`;
        await copy(fresh2, `docker://${mirror.host}/pre2/src/app:someone-else`);
        await destroy(fresh);
        assert.equal(await digestAt(`docker://${mirror.host}/pre2/src/app:someone-else`), digests[app]);
        // docker-registry refuses deleting a tag alone (400 DIGEST_INVALID), so the tag stays too, logged.
        assert.ok(await exists(fresh2));
        assert.ok(
            logs.some((l) => /pre2\/src\/app:v1: the registry refuses deleting a tag alone.*tag someone-else/.test(l)),
            logs.join("\n"),
        );
    });

    it("two mirrors sharing one image: destroying one leaves the other's tags resolvable", async () => {
        // Different tags for one digest: by tag, and pinned by digest (tag sha256-<hex>).
        const pinned = `${source.host}/src/app@${digests[app]}`;
        const pinnedTag = `docker://${mirror.host}/shared/src/app:sha256-${digests[app]!.slice(7)}`;
        const byTag = `docker://${mirror.host}/shared/src/app:v1`;
        const first = await sync([app], `docker://${mirror.host}/shared`);
        const second = await sync([pinned], `docker://${mirror.host}/shared`);
        assert.deepEqual(first.pushed[0]!.created, { v: 1, tag: true, manifests: [digests[app]] });
        assert.deepEqual(second.pushed[0]!.created, { v: 1, tag: true, manifests: [] });
        await destroy(first);
        assert.equal(await digestAt(pinnedTag), digests[app]);
        assert.ok(await exists(byTag), "the first one's tag stays while its manifest does");
        assert.ok(
            logs.some((l) => l.includes(`@${digests[app]}: tag sha256-`)),
            logs.join("\n"),
        );

        // The same tag: the second mirror found it there and owns nothing; destroying it leaves it.
        const third = await sync([multi], `docker://${mirror.host}/same`);
        const fourth = await sync([multi], `docker://${mirror.host}/same`);
        assert.equal(third.pushed[0]!.created!.manifests.length, 3, "the index and its two children");
        assert.deepEqual(fourth.pushed[0]!.created, { v: 1, tag: false, manifests: [] });
        await destroy(fourth);
        assert.equal(await digestAt(`docker://${mirror.host}/same/src/multi:m1`), digests[multi]);
        // The creator's destroy removes the index and both children: no other tag needs them.
        await destroy(third);
        assert.ok(!(await exists(`docker://${mirror.host}/same/src/multi:m1`)));
    });

    it("an image removed from the list is pruned only when the mirror created it", async () => {
        const dest = `docker://${mirror.host}/prune`;
        await copy(`docker://${multi}`, `${dest}/src/multi:m1`);
        const state = await sync([app, multi, other], dest);
        const byKey = Object.fromEntries(state.pushed.map((p) => [p.source, p.created]));
        assert.deepEqual(byKey[multi], { v: 1, tag: false, manifests: [] });
        assert.deepEqual(byKey[other], { v: 1, tag: true, manifests: [digests[other]] });
        const fewer = await sync([app], dest, { previous: state.pushed });
        assert.equal(await digestAt(`${dest}/src/multi:m1`), digests[multi], "there before: kept");
        assert.ok(!(await exists(`${dest}/src/other:v1`)), "created by the mirror: pruned");
        assert.equal(await digestAt(`${dest}/src/app:v1`), digests[app]);
        // Ownership carries over: the image the first sync created is still the mirror's.
        assert.deepEqual(fewer.pushed[0]!.created, { v: 1, tag: true, manifests: [digests[app]] });
        await destroy(fewer);
        assert.ok(!(await exists(`${dest}/src/app:v1`)));
        assert.equal(await digestAt(`${dest}/src/multi:m1`), digests[multi]);
    });

    it("a state without ownership records deletes nothing, and says so; one of an unknown shape is refused", async () => {
        const dest = `docker://${mirror.host}/old`;
        const state = await sync([app], dest);
        const { created: _, ...withoutRecord } = state.pushed[0]!;
        await destroy({ ...state, pushed: [withoutRecord] });
        assert.equal(await digestAt(`${dest}/src/app:v1`), digests[app]);
        assert.ok(
            logs.some((l) => l.includes("cannot prove it created") && l.includes("v1")),
            logs.join("\n"),
        );
        const odd = { ...state.pushed[0]!, created: { v: 2, owner: "someone" } as never };
        await assert.rejects(destroy({ ...state, pushed: [odd] }), (err: Error & { code?: string }) => {
            assert.equal(err.code, "ERR_PARSE");
            assert.match(err.message, /pushed\[0\]\.created .*unknown shape|unknown shape[\s\S]*pushed\[0\]\.created/);
            return true;
        });
        assert.equal(await digestAt(`${dest}/src/app:v1`), digests[app]);
    });

    it("oci: layout shared by two resources and someone else: destroying one leaves the others' entries and blobs", async () => {
        const dir = join(work, "layout");
        const name = `${source.host}/src/app:v1`;
        await copy(await singleLayout("else", 700, 53), `oci:${dir}:someone/else:1`);
        const elseBlobs = blobsIn(dir);
        const first = await sync([app], `oci:${dir}`);
        const second = await sync([app, other], `oci:${dir}`);
        assert.equal(second.pushed.find((p) => p.source === app)!.created!.tag, false);
        // The second found the first's entry: destroying it leaves that entry and its blobs.
        await destroy(second);
        assert.equal(await digestAt(`oci:${dir}:${name}`), digests[app]);
        await copy(`oci:${dir}:${name}`, `oci:${join(work, "check1")}:x`);
        assert.ok(!(await exists(`oci:${dir}:${source.host}/src/other:v1`)), "its own entry is gone");
        // The first one's destroy removes its entry and every blob only it referenced.
        await destroy(first);
        const names = (await readLayout(dir)).manifests.map(
            (d) => d.annotations?.["org.opencontainers.image.ref.name"],
        );
        assert.deepEqual(names, ["someone/else:1"]);
        assert.deepEqual(blobsIn(dir), elseBlobs);
        await copy(`oci:${dir}:someone/else:1`, `oci:${join(work, "check2")}:x`);
    });

    it("an update to another spelling of the same layout keeps what it just put; a held layout lock is waited for", async () => {
        const dir = join(work, "respelled");
        const state = await sync([app], `oci:${dir}/./`);
        const again = await sync([app], `oci:${dir}`, { previous: state.pushed });
        assert.equal(await digestAt(`oci:${dir}:${source.host}/src/app:v1`), digests[app]);
        const lock = await takeLock(layoutLockFile(dir), 1000);
        try {
            await assert.rejects(
                removeImages({ ...again, tls: tls() }, { registry, log, lockTimeoutMs: 300 }),
                (err: Error & { code?: string }) => err.code === "ERR_CONFLICT" && err.message.includes(".airgap.lock"),
            );
        } finally {
            await lock.release();
        }
        assert.equal(await digestAt(`oci:${dir}:${source.host}/src/app:v1`), digests[app]);
        await destroy(again);
        assert.ok(!(await exists(`oci:${dir}:${source.host}/src/app:v1`)));
    });

    it("an archive another run is writing is waited for, then refused naming the holder; the archive stays as it was", async () => {
        const archive = join(work, "carry", "held.tar");
        const first = await sync([app], `oci-archive:${archive}`);
        const before = fs.readFileSync(archive);
        const lock = await takeLock(`${archive}.airgap.lock`, 1000);
        try {
            await assert.rejects(
                sync([app], `oci-archive:${archive}`, { lockTimeoutMs: 300, previous: first.pushed }),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_CONFLICT" &&
                    err.message.includes(`${archive}.airgap.lock is held by ${process.pid}@`),
            );
        } finally {
            await lock.release();
        }
        assert.deepEqual(fs.readFileSync(archive), before);
        await destroy(first);
    });
});

/** The blob files of a layout, sorted. */
function blobsIn(dir: string): string[] {
    return fs
        .readdirSync(join(dir, "blobs", "sha256"))
        .filter((n) => !n.startsWith("."))
        .sort();
}
