import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { getBytes } from "../../../provider/http/client";
import { copyImage } from "../../../provider/oci/copy";
import { digestOf } from "../../../provider/oci/digest";
import { readLayout } from "../../../provider/oci/layout";
import {
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
} from "../../../provider/oci/manifest";
import { openImageDestination, openImageSource } from "../../../provider/oci/open";
import type { RegistryOptions } from "../../../provider/oci/registry_transport";
import { withCode } from "../../harness/expect";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const MiB = 1024 * 1024;
const HTTP: RegistryOptions = { insecure: "http", retry: { attempts: 1 } };

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;

/**
 * A registry on 127.0.0.1 that serves what the test puts in `manifests` and `blobs`, with
 * `routes` answering some paths in its own (hostile) way. It logs every request and counts the
 * body bytes it managed to send for each path.
 */
async function startFakeRegistry() {
    const manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
    const blobs = new Map<string, Buffer>();
    const routes = new Map<string, Handler>();
    const log: { method: string; path: string }[] = [];
    const sent = new Map<string, number>();
    const sockets = new Set<Socket>();
    const server = createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]!;
        log.push({ method: req.method ?? "GET", path });
        const route = routes.get(path);
        if (route !== undefined) {
            void Promise.resolve(route(req, res, path)).catch(() => res.destroy());
            return;
        }
        if (path === "/v2/") {
            res.writeHead(200, { "content-length": "2" }).end("{}");
            return;
        }
        const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
        const found =
            m === null
                ? undefined
                : m[2] === "manifests"
                  ? manifests.get(m[3]!)
                  : blobs.has(m[3]!)
                    ? { bytes: blobs.get(m[3]!)!, mediaType: "application/octet-stream" }
                    : undefined;
        if (found === undefined) {
            res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
            return;
        }
        res.writeHead(200, {
            "content-type": found.mediaType,
            "content-length": String(found.bytes.length),
            "docker-content-digest": digestOf(found.bytes),
        });
        res.end(req.method === "HEAD" ? undefined : found.bytes);
    });
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;

    /** Sends `total` bytes of `fill` (with a Content-Length when `declared`), as fast as the client reads them. */
    const huge =
        (status: number, total: number, declared: boolean, fill = "a"): Handler =>
        async (_req, res, path) => {
            res.writeHead(status, {
                "content-type": "application/json",
                ...(declared ? { "content-length": String(total) } : {}),
            });
            const chunk = Buffer.alloc(64 * 1024, fill);
            let count = 0;
            let closed = false;
            let wake: (() => void) | undefined;
            res.on("drain", () => wake?.());
            res.on("close", () => {
                closed = true;
                wake?.();
            });
            while (count < total && !closed) {
                const ok = res.write(chunk);
                count += chunk.length;
                sent.set(path, count);
                if (!ok && !closed) {
                    await new Promise<void>((resolve) => {
                        wake = resolve;
                    });
                }
            }
            res.end();
        };

    return {
        host: `127.0.0.1:${port}`,
        url: `http://127.0.0.1:${port}`,
        manifests,
        blobs,
        routes,
        log,
        sent,
        huge,
        requests: (method: string, path: string) => log.filter((r) => r.method === method && r.path === path).length,
        async close() {
            for (const s of sockets) s.destroy();
            await new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}

type FakeRegistry = Awaited<ReturnType<typeof startFakeRegistry>>;

function json(value: unknown): Buffer {
    return Buffer.from(JSON.stringify(value));
}

describe("hostile or huge answers from a registry", function () {
    this.timeout(120_000);
    let registry: FakeRegistry;

    beforeEach(async () => {
        registry = await startFakeRegistry();
    });
    afterEach(async () => {
        await registry?.close();
    });
    after(cleanupAll);

    /** An image whose index lists its only child `times` times, served as app:v1. */
    function serveIndexListingOneChild(times: number) {
        const config = json({ architecture: "amd64", os: "linux" });
        const layer = Buffer.from("layer bytes");
        const manifest = json({
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: digestOf(config), size: config.length },
            layers: [{ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: digestOf(layer), size: layer.length }],
        });
        const child = {
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            digest: digestOf(manifest),
            size: manifest.length,
            platform: { os: "linux", architecture: "amd64" },
        };
        const index = json({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: Array(times).fill(child) });
        registry.blobs.set(digestOf(config), config);
        registry.blobs.set(digestOf(layer), layer);
        registry.manifests.set(child.digest, { bytes: manifest, mediaType: MEDIA_TYPE_OCI_MANIFEST });
        registry.manifests.set("v1", { bytes: index, mediaType: MEDIA_TYPE_OCI_INDEX });
        return { child: child.digest, index: digestOf(index), config: digestOf(config), layer: digestOf(layer) };
    }

    it("copies an index listing one child 5000 times with exactly one GET of that child", async () => {
        const image = serveIndexListingOneChild(5000);
        const dir = await makeTempDir("hostile-dest");
        const source = await openImageSource(`docker://${registry.host}/app:v1`, { registry: HTTP });
        const destination = await openImageDestination(`oci:${dir}:v1`);
        try {
            const result = await copyImage({ source, destination });
            await destination.commit();
            assert.equal(result.sourceDigest, image.index);
            assert.deepEqual(result.manifests, [image.child, image.index]);
        } finally {
            await source.close();
            await destination.close();
        }
        assert.equal(registry.requests("GET", `/v2/app/manifests/${image.child}`), 1);
        assert.equal(registry.requests("GET", `/v2/app/blobs/${image.layer}`), 1);
        assert.equal((await readLayout(dir)).manifests[0]?.digest, image.index);
    });

    /** A registry asking for a bearer token from its own `/token`, which answers with `handler`. */
    function askForToken(handler: Handler): void {
        registry.routes.set("/v2/", (_req, res) => {
            res.writeHead(401, {
                "www-authenticate": `Bearer realm="${registry.url}/token",service="fake"`,
                "content-length": "0",
            }).end();
        });
        registry.routes.set("/token", handler);
    }

    for (const declared of [false, true]) {
        it(`refuses a 100 MiB token answer${declared ? " (Content-Length)" : " (chunked)"} after at most a few MiB`, async () => {
            serveIndexListingOneChild(1);
            askForToken(registry.huge(200, 100 * MiB, declared));
            const source = await openImageSource(`docker://${registry.host}/app:v1`, { registry: HTTP });
            try {
                await assert.rejects(
                    source.getManifest(),
                    withCode(
                        "ERR_TOO_LARGE",
                        /^token for repository:app:pull from http:\/\/127\.0\.0\.1:\d+\/token (is larger than|is 104857600 bytes, more than) the 1 MiB allowed$/,
                    ),
                );
            } finally {
                await source.close();
            }
            const sent = registry.sent.get("/token") ?? 0;
            assert.ok(sent < 16 * MiB, `the token service sent ${sent} bytes`);
        });
    }

    it("refuses a 100 MiB manifest after at most a few MiB", async () => {
        registry.routes.set("/v2/app/manifests/v1", registry.huge(200, 100 * MiB, false));
        const source = await openImageSource(`docker://${registry.host}/app:v1`, { registry: HTTP });
        try {
            await assert.rejects(
                source.getManifest(),
                withCode("ERR_TOO_LARGE", /^manifest 127\.0\.0\.1:\d+\/app:v1 is larger than the 4 MiB allowed$/),
            );
        } finally {
            await source.close();
        }
        const sent = registry.sent.get("/v2/app/manifests/v1") ?? 0;
        assert.ok(sent < 20 * MiB, `the registry sent ${sent} bytes`);
    });

    it("refuses a tag list page of 100 MiB after at most a few tens of MiB", async () => {
        registry.routes.set("/v2/app/tags/list", registry.huge(200, 100 * MiB, false));
        const source = await openImageSource(`docker://${registry.host}/app:v1`, { registry: HTTP });
        try {
            await assert.rejects(
                source.listTags(),
                withCode("ERR_TOO_LARGE", /^tags of 127\.0\.0\.1:\d+\/app is larger than the 16 MiB allowed$/),
            );
        } finally {
            await source.close();
        }
        const sent = registry.sent.get("/v2/app/tags/list") ?? 0;
        assert.ok(sent < 40 * MiB, `the registry sent ${sent} bytes`);
    });

    it("reads only the start of a 100 MiB error answer", async () => {
        registry.routes.set("/v2/app/manifests/v1", registry.huge(404, 100 * MiB, false));
        const source = await openImageSource(`docker://${registry.host}/app:v1`, { registry: HTTP });
        try {
            await assert.rejects(source.getManifest(), withCode("ERR_NOT_FOUND", /tag v1 not found/));
        } finally {
            await source.close();
        }
        const sent = registry.sent.get("/v2/app/manifests/v1") ?? 0;
        assert.ok(sent < 16 * MiB, `the registry sent ${sent} bytes`);
    });

    it("getBytes refuses a body past its limit, and reads only the start of an error answer", async () => {
        registry.routes.set("/big", registry.huge(200, 100 * MiB, false));
        registry.routes.set("/missing", registry.huge(404, 100 * MiB, false));
        await assert.rejects(
            getBytes(`${registry.url}/big`, { maxBytes: MiB, retry: { attempts: 1 } }),
            withCode(
                "ERR_TOO_LARGE",
                /^GET http:\/\/127\.0\.0\.1:\d+\/big: the body is larger than the 1 MiB allowed$/,
            ),
        );
        await assert.rejects(
            getBytes(`${registry.url}/missing`, { retry: { attempts: 1 } }),
            withCode("ERR_NOT_FOUND"),
        );
        for (const path of ["/big", "/missing"]) {
            const sent = registry.sent.get(path) ?? 0;
            assert.ok(sent < 16 * MiB, `${path}: the server sent ${sent} bytes`);
        }
    });
});
