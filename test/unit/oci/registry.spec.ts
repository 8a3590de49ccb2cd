import assert from "node:assert/strict";
import { parseRetryAfter, retryDelay } from "../../../provider/http/retry";
import { Agent } from "undici";
import {
    describeErrorBody,
    errorCodes,
    isRetriableNetworkError,
    isRetriableStatus,
    nextLink,
    RegistryClient,
    repositoryScope,
    uploadedBytes,
} from "../../../provider/oci/registry_client";
import { servedMediaType } from "../../../provider/oci/registry_src";
import { BlobLocationCache } from "../../../provider/oci/registry_transport";

describe("oci/registry client helpers", () => {
    it("formats repository scopes", () => {
        assert.equal(repositoryScope("library/nginx", "pull"), "repository:library/nginx:pull");
        assert.equal(repositoryScope("org/app", "pull,push"), "repository:org/app:pull,push");
    });

    it("retries 5xx and 429, never other 4xx", () => {
        for (const s of [500, 502, 503, 504, 429]) assert.equal(isRetriableStatus(s), true, String(s));
        for (const s of [200, 201, 400, 401, 403, 404, 405, 416]) assert.equal(isRetriableStatus(s), false, String(s));
    });

    it("retries connection failures but not certificate failures", () => {
        assert.equal(isRetriableNetworkError(Object.assign(new Error("reset"), { code: "ECONNRESET" })), true);
        assert.equal(isRetriableNetworkError(Object.assign(new Error("closed"), { code: "UND_ERR_SOCKET" })), true);
        assert.equal(
            isRetriableNetworkError(
                new Error("fetch failed", { cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }) }),
            ),
            true,
        );
        assert.equal(
            isRetriableNetworkError(Object.assign(new Error("self-signed"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" })),
            false,
        );
        assert.equal(isRetriableNetworkError(new Error("plain")), false);
        assert.equal(isRetriableNetworkError("not an error"), false);
    });

    it("backs off exponentially, bounded, and honours Retry-After (seconds or a date)", () => {
        const o = { baseDelayMs: 100, maxDelayMs: 1000 };
        assert.deepEqual(
            [1, 2, 3, 4, 5].map((n) => retryDelay(n, o)),
            [100, 200, 400, 800, 1000],
        );
        assert.equal(retryDelay(1, o, parseRetryAfter("0")), 0);
        assert.equal(retryDelay(1, o, parseRetryAfter("3")), 1000);
        assert.equal(retryDelay(2, o, parseRetryAfter("soon")), 200);
        assert.equal(retryDelay(1), 250);
        assert.equal(retryDelay(9), 10_000);
        const now = Date.parse("2026-12-02T12:00:00Z");
        assert.equal(parseRetryAfter("Wed, 02 Dec 2026 12:00:07 GMT", now), 7000);
        assert.equal(parseRetryAfter(undefined), undefined);
    });

    it("follows Link rel=next", () => {
        const base = new URL("http://r:5000/v2/app/tags/list");
        assert.equal(
            nextLink('</v2/app/tags/list?last=b&n=2>; rel="next"', base)?.toString(),
            "http://r:5000/v2/app/tags/list?last=b&n=2",
        );
        assert.equal(nextLink('<http://other/x>; rel="prev"', base), undefined);
        assert.equal(nextLink(undefined, base), undefined);
    });

    it("reads upload progress from Range", () => {
        assert.equal(uploadedBytes("0-1023"), 1024);
        assert.equal(uploadedBytes("bytes=0-9"), 10);
        assert.equal(uploadedBytes("0-0"), 0);
        assert.equal(uploadedBytes(undefined), undefined);
        assert.equal(uploadedBytes("5-9"), undefined);
    });

    it("describes distribution error bodies", () => {
        const body = JSON.stringify({
            errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "v9" } }],
        });
        assert.equal(describeErrorBody(body), "MANIFEST_UNKNOWN: manifest unknown");
        assert.deepEqual(errorCodes(body), ["MANIFEST_UNKNOWN"]);
        assert.equal(describeErrorBody("  plain\n text "), "plain text");
        assert.deepEqual(errorCodes("<html>"), []);
        assert.equal(describeErrorBody("x".repeat(300)).length, 203);
    });

    it("takes a served Content-Type only when it names a media type", () => {
        assert.equal(servedMediaType("application/json; charset=utf-8"), undefined);
        assert.equal(servedMediaType(undefined), undefined);
        assert.equal(
            servedMediaType("application/vnd.oci.image.manifest.v1+json"),
            "application/vnd.oci.image.manifest.v1+json",
        );
    });

    it("records which repositories hold a blob", () => {
        const cache = new BlobLocationCache();
        const d = `sha256:${"a".repeat(64)}`;
        cache.record("r:5000", "one", d);
        cache.record("r:5000", "two", d);
        cache.record("other:5000", "three", d);
        assert.deepEqual(cache.candidates("r:5000", d, "two"), ["one"]);
        assert.deepEqual(cache.candidates("r:5000", d, "x"), ["two", "one"]);
        assert.deepEqual(cache.candidates("r:5000", `sha256:${"b".repeat(64)}`, "x"), []);
    });

    it("refuses TLS options together with a dispatcher, and bad option values", async () => {
        const agent = new Agent();
        try {
            assert.throws(
                () => new RegistryClient("r:5000", { dispatcher: agent, caPem: "x" }),
                (e: { code?: string; argument?: string }) =>
                    e.code === "ERR_INVALID_ARGUMENT" && e.argument === "dispatcher",
            );
            assert.throws(
                () => new RegistryClient("r:5000", { dispatcher: agent, insecure: "skip-verify" }),
                (e: { code?: string }) => e.code === "ERR_INVALID_ARGUMENT",
            );
            await new RegistryClient("r:5000", { dispatcher: agent, insecure: "http" }).close();
            assert.throws(
                () => new RegistryClient("r:5000", { retry: { attempts: 0 } }),
                (e: { argument?: string }) => e.argument === "retry.attempts",
            );
        } finally {
            await agent.close();
        }
    });

    it("serves Docker Hub's API from registry-1.docker.io", async () => {
        const hub = new RegistryClient("docker.io");
        const other = new RegistryClient("quay.io");
        assert.equal(hub.apiHost, "registry-1.docker.io");
        assert.equal(other.apiHost, "quay.io");
        await hub.close();
        await other.close();
    });
});
