import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

interface Got {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
    /** Set when the connection broke before the body was complete. */
    error?: string;
}

/** A raw node:http GET/HEAD that reports broken bodies instead of hiding them. */
function get(url: string, method = "GET"): Promise<Got> {
    return new Promise((resolve, reject) => {
        const req = request(url, { method, agent: false }, (res) => {
            const chunks: Buffer[] = [];
            const finish = (error?: string) =>
                resolve({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(chunks),
                    ...(error === undefined ? {} : { error }),
                });
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => finish());
            res.on("error", (e) => finish(e.message));
            res.on("aborted", () => finish("aborted"));
        });
        req.on("error", reject);
        req.end();
    });
}

describe("harness: static HTTP server with faults", () => {
    let root: string;
    let server: StaticServer;
    const body = Buffer.from("0123456789".repeat(100));

    before(async () => {
        root = await makeTempDir("http-spec");
        await mkdir(join(root, "dists/stable"), { recursive: true });
        await writeFile(join(root, "dists/stable/Release"), body);
        await writeFile(join(root, "a file.txt"), "spaced\n");
        server = await startStaticServer(root);
    });
    after(async () => {
        await server?.close();
        await cleanupAll();
    });
    beforeEach(() => {
        server.clearFaults();
        server.clearLog();
    });

    it("listens on 127.0.0.1 with a port of its own", () => {
        assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.notEqual(server.port, 0);
    });

    it("serves files with Content-Length, HEAD without a body, 404 for missing files and directories", async () => {
        const ok = await get(`${server.url}/dists/stable/Release`);
        assert.equal(ok.status, 200);
        assert.equal(ok.headers["content-length"], String(body.length));
        assert.deepEqual(ok.body, body);

        const head = await get(`${server.url}/dists/stable/Release`, "HEAD");
        assert.equal(head.status, 200);
        assert.equal(head.headers["content-length"], String(body.length));
        assert.equal(head.body.length, 0);

        assert.equal((await get(`${server.url}/a%20file.txt`)).body.toString(), "spaced\n");
        assert.equal((await get(`${server.url}/missing`)).status, 404);
        assert.equal((await get(`${server.url}/dists`)).status, 404);
        assert.equal((await get(`${server.url}/dists/../../../etc/passwd`)).status, 404);
        assert.equal((await get(`${server.url}/%2e%2e/%2e%2e/etc/passwd`)).status, 404);
    });

    it("logs method, path and status of every request", async () => {
        await get(`${server.url}/dists/stable/Release`);
        await get(`${server.url}/dists/stable/Release`, "HEAD");
        await get(`${server.url}/nope?x=1`);
        assert.deepEqual(server.requests, [
            { method: "GET", path: "/dists/stable/Release", status: 200 },
            { method: "HEAD", path: "/dists/stable/Release", status: 200 },
            { method: "GET", path: "/nope", status: 404 },
        ]);
        assert.equal(server.requestsFor("/dists/stable/Release", "GET").length, 1);
        assert.equal(server.requestsFor("/other").length, 0);
    });

    it("answers with an injected status the given number of times", async () => {
        server.fault("/dists/stable/Release", { status: 500, times: 2 });
        assert.equal((await get(`${server.url}/dists/stable/Release`)).status, 500);
        assert.equal((await get(`${server.url}/dists/stable/Release`)).status, 500);
        assert.equal((await get(`${server.url}/dists/stable/Release`)).status, 200);
        assert.deepEqual(
            server.requests.map((r) => [r.status, r.fault]),
            [
                [500, "status"],
                [500, "status"],
                [200, undefined],
            ],
        );
    });

    it("resets the connection in the middle of the body", async () => {
        server.fault("/dists/stable/Release", { reset: true, times: 1 });
        const broken = await get(`${server.url}/dists/stable/Release`).catch((e: Error) => ({ error: e.message }));
        assert.ok("error" in broken && broken.error !== undefined, "the reset must be visible to the client");
        if ("body" in broken) assert.ok(broken.body.length < body.length);
        const ok = await get(`${server.url}/dists/stable/Release`);
        assert.deepEqual(ok.body, body);
    });

    it("truncates: full Content-Length, fewer bytes, then close", async () => {
        server.fault("/dists/stable/Release", { truncate: 10, times: 1 });
        const cut = await get(`${server.url}/dists/stable/Release`).catch((e: Error) => ({ error: e.message }));
        assert.ok("error" in cut && cut.error !== undefined, "a short body must be visible to the client");
        if ("body" in cut) {
            assert.equal(cut.headers["content-length"], String(body.length));
            assert.deepEqual(cut.body, body.subarray(0, 10));
        }
        assert.equal(server.requests[0]?.fault, "truncate");
    });

    it("replaces the body, matching paths by RegExp", async () => {
        server.fault(/\/Release$/, { replaceBody: Buffer.from("tampered") });
        assert.equal((await get(`${server.url}/dists/stable/Release`)).body.toString(), "tampered");
        assert.equal((await get(`${server.url}/dists/stable/Release`)).body.toString(), "tampered");
        assert.equal((await get(`${server.url}/a%20file.txt`)).body.toString(), "spaced\n");
    });

    it("delays the answer", async () => {
        server.fault("/a file.txt", { delayMs: 300, times: 1 });
        const start = Date.now();
        const got = await get(`${server.url}/a%20file.txt`);
        assert.ok(Date.now() - start >= 280, "the answer came too early");
        assert.equal(got.status, 200);
        assert.equal(server.requests[0]?.fault, "delay");
    });

    it("close() stops listening", async () => {
        const other = await startStaticServer(root);
        await other.close();
        await assert.rejects(get(`${other.url}/a%20file.txt`), /ECONNREFUSED/);
    });
});
