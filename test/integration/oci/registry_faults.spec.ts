import assert from "node:assert/strict";
import { copyImage } from "../../../provider/oci/copy";
import { digestOf } from "../../../provider/oci/digest";
import { parseManifest } from "../../../provider/oci/manifest";
import { type OpenImageOptions, openImageDestination, openImageSource } from "../../../provider/oci/open";
import type { RegistryOptions } from "../../../provider/oci/registry_transport";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { cleanupAll } from "../../harness/tmp";
import { type FaultProxy, singleLayout, skopeo, skopeoRaw, startFaultProxy } from "./registry_helpers";
import { withCode } from "../../harness/expect";

const HTTP: RegistryOptions = { insecure: "http", retry: { baseDelayMs: 10 } };

describe("registry faults (a misbehaving proxy in front of docker-registry)", function () {
    this.timeout(180_000);
    let source: RegistryServer;
    let mirror: RegistryServer;
    let proxy: FaultProxy;
    let mirrorProxy: FaultProxy;
    let manifest: Buffer;
    let layer: { digest: string; size: number };
    let configDigest: string;
    const manifestPath = "/v2/src/app/manifests/v1";
    let layerPath: string;

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        await skopeo([
            "copy",
            "--dest-tls-verify=false",
            await singleLayout("v1", 50_000, 21),
            `docker://${source.host}/src/app:v1`,
        ]);
        manifest = await skopeoRaw(`docker://${source.host}/src/app:v1`);
        const parsed = parseManifest(manifest);
        if (parsed.kind !== "manifest") throw new Error("expected a manifest");
        layer = parsed.layers[0]!;
        configDigest = parsed.config.digest;
        layerPath = `/v2/src/app/blobs/${layer.digest}`;
        proxy = await startFaultProxy(source.url);
        mirrorProxy = await startFaultProxy(mirror.url);
    });
    after(async () => {
        await proxy?.close();
        await mirrorProxy?.close();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });
    beforeEach(() => {
        proxy.clear();
        mirrorProxy.clear();
    });

    const requests = (p: FaultProxy, method: string, path: string) =>
        p.log.filter((r) => r.method === method && r.path === path);

    /** Copies src/app:v1 through the proxy into `repo` of the mirror (directly, or through its proxy). */
    async function copyTo(repo: string, options: OpenImageOptions = {}, viaMirrorProxy = false) {
        const src = await openImageSource(`docker://${proxy.host}/src/app:v1`, { registry: HTTP, ...options });
        const host = viaMirrorProxy ? mirrorProxy.host : mirror.host;
        const dest = await openImageDestination(`docker://${host}/${repo}:v1`, { registry: HTTP, ...options });
        try {
            return await copyImage({ source: src, destination: dest });
        } finally {
            await src.close();
            await dest.close();
        }
    }

    async function tagsAt(repo: string): Promise<string[]> {
        const dest = await openImageDestination(`docker://${mirror.host}/${repo}`, { registry: HTTP });
        try {
            return await dest.listTags();
        } finally {
            await dest.close();
        }
    }

    it("retries a 500 and succeeds", async () => {
        proxy.fault({ method: "GET", path: /\/manifests\/v1$/, status: 500, times: 1 });
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), status: 502, times: 2 });
        const result = await copyTo("faults/retried");
        assert.equal(result.sourceDigest, digestOf(manifest));
        assert.equal(requests(proxy, "GET", manifestPath).length, 2);
        assert.equal(requests(proxy, "GET", layerPath).length, 3);
        assert.equal(digestOf(await skopeoRaw(`docker://${mirror.host}/faults/retried:v1`)), digestOf(manifest));
    });

    it("gives up after a bounded number of 5xx, and never retries other 4xx", async () => {
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), status: 503 });
        await assert.rejects(copyTo("faults/unavailable"), withCode("ERR_NETWORK", /answered 503 4 times/));
        assert.equal(requests(proxy, "GET", layerPath).length, 4);
        assert.deepEqual(await tagsAt("faults/unavailable"), []);

        proxy.clear();
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), status: 400 });
        await assert.rejects(copyTo("faults/bad-request"), withCode("ERR_NETWORK", /answered 400/));
        assert.equal(requests(proxy, "GET", layerPath).length, 1);
    });

    it("resumes a blob after a connection reset, and fails clearly when resets go on", async () => {
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), reset: true, times: 1 });
        const resumed = await copyTo("faults/resumed");
        assert.equal(resumed.bytes, layer.size + (await sizeOf(configDigest)));
        assert.equal(requests(proxy, "GET", layerPath).length, 2);

        proxy.clear();
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), reset: true });
        await assert.rejects(
            copyTo("faults/killed"),
            withCode("ERR_NETWORK", /connection failed after \d+ bytes \(after resuming 3 times\)/),
        );
        assert.deepEqual(await tagsAt("faults/killed"), []);

        // The next run completes, without copying again the blob the failed run had verified.
        proxy.clear();
        const next = await copyTo("faults/killed");
        assert.equal(next.blobsSkipped, 1);
        assert.equal(next.blobsCopied, 1);
        assert.equal(next.bytes, layer.size);
        assert.equal(requests(proxy, "GET", `/v2/src/app/blobs/${configDigest}`).length, 0);
    });

    it("rejects a blob whose bytes do not match its digest and never pushes it", async () => {
        const garbage = Buffer.alloc(layer.size, 0x5a);
        proxy.fault({ method: "GET", path: new RegExp(`${layer.digest}$`), replaceBody: garbage });
        await assert.rejects(copyTo("faults/corrupt"), withCode("ERR_VERIFICATION", /digest mismatch/));
        const dest = await openImageDestination(`docker://${mirror.host}/faults/corrupt`, { registry: HTTP });
        try {
            assert.equal(await dest.hasBlob(layer.digest), false);
            assert.equal(await dest.hasBlob(digestOf(garbage)), false);
        } finally {
            await dest.close();
        }
        assert.deepEqual(await tagsAt("faults/corrupt"), []);
    });

    it("refuses manifests of unsupported media types and tags whose digest does not match", async () => {
        const unknown = Buffer.from(
            JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.example.unknown+json", layers: [] }),
        );
        proxy.fault({
            method: "GET",
            path: /\/manifests\/v1$/,
            replaceBody: unknown,
            headers: { "content-type": "application/vnd.example.unknown+json" },
            dropHeaders: ["docker-content-digest"],
            times: 1,
        });
        await assert.rejects(
            copyTo("faults/unknown"),
            withCode("ERR_PARSE", /unsupported manifest media type "application\/vnd\.example\.unknown\+json"/),
        );

        proxy.fault({ method: "GET", path: /\/manifests\/v1$/, replaceBody: Buffer.from(`${manifest} `), times: 1 });
        await assert.rejects(copyTo("faults/lying"), withCode("ERR_VERIFICATION", /Docker-Content-Digest/));
        assert.deepEqual(await tagsAt("faults/lying"), []);
    });

    it("resumes a chunked upload after a failed chunk", async () => {
        mirrorProxy.fault({ method: "PATCH", path: /\/blobs\/uploads\//, status: 500, times: 1 });
        const result = await copyTo(
            "faults/chunked",
            { registryDestination: { chunkThreshold: 0, chunkSize: 16 * 1024 } },
            true,
        );
        const patches = mirrorProxy.log.filter((r) => r.method === "PATCH");
        assert.equal(patches[0]!.status, 500);
        assert.ok(patches.length >= 5, `${patches.length} PATCHes`);
        assert.ok(mirrorProxy.log.some((r) => r.method === "GET" && r.path.includes("/blobs/uploads/")));
        assert.equal(digestOf(await skopeoRaw(`docker://${mirror.host}/faults/chunked:v1`)), result.sourceDigest);
    });

    async function sizeOf(digest: string): Promise<number> {
        const parsed = parseManifest(manifest);
        return parsed.kind === "manifest" && parsed.config.digest === digest ? parsed.config.size : 0;
    }
});
