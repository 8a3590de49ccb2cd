import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseDockerConfig } from "../../../provider/oci/auth";
import { digestOf } from "../../../provider/oci/digest";
import { parseManifest, referencedBlobs } from "../../../provider/oci/manifest";
import { openImageDestination, openImageSource } from "../../../provider/oci/open";
import type { RegistryImageDestination } from "../../../provider/oci/registry_dest";
import { BlobLocationCache, type RegistryOptions } from "../../../provider/oci/registry_transport";
import { resolveTags } from "../../../provider/oci/resolve";
import type { ImageDestination, ImageSource } from "../../../provider/oci/types";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { startTokenServer, type TokenServer } from "../../harness/servers/token";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { readAll } from "./fixtures";
import { multiArchLayout, singleLayout, skopeo, skopeoRaw } from "./registry_helpers";
import { withCode } from "../../harness/expect";

const HTTP: RegistryOptions = { insecure: "http", retry: { baseDelayMs: 10 } };

/** Puts every blob of the manifest at `src` into `dest`, then the manifest under `tag`. */
async function pushThrough(src: ImageSource, dest: ImageDestination, tag?: string): Promise<string> {
    const top = await src.getManifest();
    const parsed = parseManifest(top.bytes, top.mediaType);
    assert.equal(parsed.kind, "manifest");
    if (parsed.kind !== "manifest") throw new Error("unreachable");
    for (const d of referencedBlobs(parsed)) {
        const { stream } = await src.getBlob(d.digest);
        await dest.putBlob(stream, { digest: d.digest, size: d.size });
    }
    return dest.putManifest(top.bytes, top.mediaType, tag);
}

describe("registry transport (docker-registry, judged by skopeo)", function () {
    this.timeout(180_000);

    describe("plain HTTP, anonymous", () => {
        let registry: RegistryServer;
        let plainDigest: string;
        let bigRef: string;

        before(async () => {
            registry = await startRegistry();
            const plain = await singleLayout("v1", 2048);
            await skopeo(["copy", "--dest-tls-verify=false", plain, `docker://${registry.host}/src/plain:v1`]);
            plainDigest = digestOf(await skopeoRaw(`docker://${registry.host}/src/plain:v1`));
            bigRef = await singleLayout("big", 200_000, 7);
            await skopeo(["copy", "--dest-tls-verify=false", bigRef, `docker://${registry.host}/src/big:v1`]);
        });
        after(async () => {
            await registry?.stop();
            await cleanupAll();
        });

        it("reads manifests by tag and digest with their exact bytes, and blobs", async () => {
            const src = await openImageSource(`docker://${registry.host}/src/plain:v1`, { registry: HTTP });
            try {
                const byTag = await src.getManifest();
                assert.equal(byTag.digest, plainDigest);
                assert.deepEqual(byTag.bytes, await skopeoRaw(`docker://${registry.host}/src/plain:v1`));
                const byDigest = await src.getManifest(plainDigest);
                assert.deepEqual(byDigest.bytes, byTag.bytes);
                const parsed = parseManifest(byTag.bytes, byTag.mediaType);
                assert.equal(parsed.kind, "manifest");
                for (const d of parsed.kind === "manifest" ? referencedBlobs(parsed) : []) {
                    assert.equal(await src.hasBlob(d.digest), true);
                    const { stream, size } = await src.getBlob(d.digest);
                    assert.equal(size, d.size);
                    assert.equal(digestOf(await readAll(stream)), d.digest);
                }
                assert.equal(await src.hasBlob(`sha256:${"0".repeat(64)}`), false);
                assert.deepEqual(await src.listTags(), ["v1"]);
            } finally {
                await src.close();
            }
        });

        it("falls back to plain HTTP when declared insecure, and can verify blobs as it streams them", async () => {
            const src = await openImageSource(`docker://${registry.host}/src/plain:v1`, {
                registry: { insecure: true },
                registrySource: { verifyBlobs: true },
            });
            try {
                const top = await src.getManifest();
                assert.equal(top.digest, plainDigest);
                const parsed = parseManifest(top.bytes, top.mediaType);
                for (const d of parsed.kind === "manifest" ? referencedBlobs(parsed) : []) {
                    const { stream } = await src.getBlob(d.digest);
                    assert.equal(digestOf(await readAll(stream)), d.digest);
                }
            } finally {
                await src.close();
            }
            const strict = await openImageSource(`docker://${registry.host}/src/plain:v1`, {
                registry: { retry: { attempts: 1 } },
            });
            try {
                await assert.rejects(strict.getManifest(), withCode("ERR_NETWORK", /reaching registry|failed/));
            } finally {
                await strict.close();
            }
        });

        it("names the tag, digest or repository that is missing", async () => {
            const src = await openImageSource(`docker://${registry.host}/src/plain:nope`, { registry: HTTP });
            const gone = await openImageSource(`docker://${registry.host}/src/absent:v1`, { registry: HTTP });
            try {
                await assert.rejects(
                    src.getManifest(),
                    withCode("ERR_NOT_FOUND", new RegExp(`tag nope not found in repo ${registry.host}/src/plain`)),
                );
                await assert.rejects(
                    src.getManifest(`sha256:${"1".repeat(64)}`),
                    withCode("ERR_NOT_FOUND", /manifest sha256:1+ not found/),
                );
                await assert.rejects(src.getBlob(`sha256:${"2".repeat(64)}`), withCode("ERR_NOT_FOUND"));
                await assert.rejects(gone.getManifest(), withCode("ERR_NOT_FOUND", /src\/absent/));
                await assert.rejects(gone.listTags(), withCode("ERR_NOT_FOUND"));
            } finally {
                await src.close();
                await gone.close();
            }
        });

        it("pushes monolithic and chunked uploads that skopeo reads back", async () => {
            for (const [repo, options] of [
                ["dest/mono", {}],
                ["dest/chunked", { chunkThreshold: 0, chunkSize: 64 * 1024 }],
            ] as const) {
                const src = await openImageSource(`docker://${registry.host}/src/big:v1`, { registry: HTTP });
                const dest = await openImageDestination(`docker://${registry.host}/${repo}:v1`, {
                    registry: HTTP,
                    registryDestination: options,
                });
                try {
                    const top = await src.getManifest();
                    assert.equal(await pushThrough(src, dest), top.digest);
                    assert.deepEqual(await skopeoRaw(`docker://${registry.host}/${repo}:v1`), top.bytes);
                    assert.deepEqual(await dest.listTags(), ["v1"]);
                } finally {
                    await src.close();
                    await dest.close();
                }
            }
            const log = registry.log();
            assert.ok(
                (log.match(/"PATCH \/v2\/dest\/chunked\/blobs\/uploads\//g) ?? []).length >= 3,
                "several PATCHes",
            );
            assert.equal(/"PATCH \/v2\/dest\/mono\//.test(log), false);
            const out = await makeTempDir("skopeo-out");
            await skopeo([
                "copy",
                "--src-tls-verify=false",
                `docker://${registry.host}/dest/chunked:v1`,
                `oci:${join(out, "layout")}:v1`,
            ]);
            const index = JSON.parse(await readFile(join(out, "layout", "index.json"), "utf8"));
            assert.equal(index.manifests.length, 1);
        });

        it("refuses blobs that do not match their digest, and never commits them", async () => {
            for (const [n, options] of [{}, { chunkThreshold: 0, chunkSize: 10 }].entries()) {
                const dest = await openImageDestination(`docker://${registry.host}/dest/bad:v1`, {
                    registry: HTTP,
                    registryDestination: options,
                });
                try {
                    const real = Buffer.from(`the real content ${n}\n`.repeat(10));
                    const fake = Buffer.from(`the fake content ${n}\n`.repeat(10));
                    const expected = { digest: digestOf(real), size: real.length };
                    await assert.rejects(
                        dest.putBlob(Readable.from([fake]), expected),
                        withCode("ERR_VERIFICATION", /digest mismatch/),
                    );
                    assert.equal(await dest.hasBlob(expected.digest), false);
                    assert.equal(await dest.hasBlob(digestOf(fake)), false);
                    await assert.rejects(
                        dest.putBlob(Readable.from([real.subarray(1)]), expected),
                        withCode("ERR_VERIFICATION"),
                    );
                    await dest.putBlob(Readable.from([real]), expected);
                    assert.equal(await dest.hasBlob(expected.digest), true);
                } finally {
                    await dest.close();
                }
            }
        });

        it("refuses a manifest whose blobs are missing, and one whose bytes do not match the digest", async () => {
            const src = await openImageSource(`docker://${registry.host}/src/plain:v1`, { registry: HTTP });
            const dest = await openImageDestination(`docker://${registry.host}/dest/empty:v1`, { registry: HTTP });
            try {
                const top = await src.getManifest();
                await assert.rejects(
                    dest.putManifest(top.bytes, top.mediaType),
                    withCode("ERR_VERIFICATION", /put blobs/),
                );
                await assert.rejects(
                    dest.putManifest(top.bytes, top.mediaType, `sha256:${"3".repeat(64)}`),
                    withCode("ERR_VERIFICATION"),
                );
            } finally {
                await src.close();
                await dest.close();
            }
        });

        it("mounts blobs from a sibling repository instead of uploading them", async () => {
            const cache = new BlobLocationCache();
            const src = await openImageSource(`docker://${registry.host}/src/big:v1`, {
                registry: HTTP,
                blobLocations: cache,
            });
            const dest = await openImageDestination(`docker://${registry.host}/dest/mounted:v1`, {
                registry: HTTP,
                blobLocations: cache,
            });
            try {
                const top = await src.getManifest();
                const parsed = parseManifest(top.bytes, top.mediaType);
                for (const d of parsed.kind === "manifest" ? referencedBlobs(parsed) : []) {
                    let read = false;
                    const stream = new Readable({
                        read() {
                            read = true;
                            this.push(null);
                        },
                    });
                    await dest.putBlob(stream, { digest: d.digest, size: d.size });
                    assert.equal(read, false, "a mounted blob is not read");
                    assert.equal(await dest.hasBlob(d.digest), true);
                }
                assert.equal(await dest.putManifest(top.bytes, top.mediaType), top.digest);
                assert.match(registry.log(), /"POST \/v2\/dest\/mounted\/blobs\/uploads\/\?mount=sha256/);
            } finally {
                await src.close();
                await dest.close();
            }
        });

        it("deletes manifests by digest", async () => {
            const src = await openImageSource(`docker://${registry.host}/src/plain:v1`, { registry: HTTP });
            const dest = (await openImageDestination(`docker://${registry.host}/dest/deleted:v1`, {
                registry: HTTP,
            })) as RegistryImageDestination;
            try {
                const digest = await pushThrough(src, dest);
                assert.equal(await dest.deleteManifest(digest), true);
                const gone = await skopeo(
                    ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/dest/deleted:v1`],
                    false,
                );
                assert.notEqual(gone.code, 0);
                assert.equal(await dest.deleteManifest(digest), false);
            } finally {
                await src.close();
                await dest.close();
            }
        });

        it("resolves tags to the digests skopeo sees", async () => {
            const multi = await multiArchLayout("m1");
            await skopeo([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                multi.reference,
                `docker://${registry.host}/src/multi:m1`,
            ]);
            const multiDigest = digestOf(await skopeoRaw(`docker://${registry.host}/src/multi:m1`));
            const refs = [`${registry.host}/src/plain:v1`, `docker://${registry.host}/src/multi:m1`];
            const resolved = await resolveTags(refs, { registry: HTTP });
            assert.deepEqual(
                [...resolved],
                [
                    [refs[0], plainDigest],
                    [refs[1], multiDigest],
                ],
            );
            await assert.rejects(
                resolveTags([`${registry.host}/src/plain:nope`, `${registry.host}/src/plain:nada`], { registry: HTTP }),
                withCode("ERR_NOT_FOUND", /2 of 2 images failed[\s\S]*nope[\s\S]*nada/),
            );
        });
    });

    describe("TLS and htpasswd (basic auth)", () => {
        let registry: RegistryServer;
        let image: string;
        before(async () => {
            registry = await startRegistry({ tls: true, auth: { username: "mirror", password: "s3cret pass" } });
            image = await singleLayout("v1", 1024, 3);
            await skopeo([
                "copy",
                "--dest-cert-dir",
                registry.certDir!,
                "--dest-creds",
                "mirror:s3cret pass",
                image,
                `docker://${registry.host}/src/app:v1`,
            ]);
        });
        after(async () => {
            await registry?.stop();
            await cleanupAll();
        });

        const config = (user: string, password: string) =>
            parseDockerConfig(
                JSON.stringify({
                    auths: {
                        [`${"127.0.0.1"}:${registry.port}`]: {
                            auth: Buffer.from(`${user}:${password}`).toString("base64"),
                        },
                    },
                }),
            );

        it("works with the right credentials from a docker config and the CA", async () => {
            const options = { registry: { caPem: registry.caCertPem!, dockerConfig: config("mirror", "s3cret pass") } };
            const src = await openImageSource(`docker://${registry.host}/src/app:v1`, options);
            const dest = await openImageDestination(`docker://${registry.host}/dest/app:v2`, options);
            try {
                const digest = await pushThrough(src, dest);
                const raw = await skopeoRaw(`docker://${registry.host}/dest/app:v2`, [
                    "--cert-dir",
                    registry.certDir!,
                    "--creds",
                    "mirror:s3cret pass",
                ]);
                assert.equal(digestOf(raw), digest);
            } finally {
                await src.close();
                await dest.close();
            }
        });

        it("says when credentials are wrong or missing, and when the certificate is not trusted", async () => {
            const at = `docker://${registry.host}/src/app:v1`;
            const wrong = await openImageSource(at, {
                registry: {
                    caPem: registry.caCertPem!,
                    credentials: { kind: "basic", username: "mirror", password: "no" },
                },
            });
            const none = await openImageSource(at, { registry: { caPem: registry.caCertPem! } });
            const untrusted = await openImageSource(at, {
                registry: {
                    credentials: { kind: "basic", username: "mirror", password: "s3cret pass" },
                    retry: { attempts: 1 },
                },
            });
            try {
                await assert.rejects(
                    wrong.getManifest(),
                    withCode("ERR_AUTH", new RegExp(`wrong credentials for 127\\.0\\.0\\.1:${registry.port}`)),
                );
                await assert.rejects(
                    none.getManifest(),
                    withCode("ERR_AUTH", /authentication required for 127\.0\.0\.1/),
                );
                await assert.rejects(untrusted.getManifest(), withCode("ERR_NETWORK", /TLS verification failed/));
            } finally {
                await wrong.close();
                await none.close();
                await untrusted.close();
            }
        });
    });

    describe("bearer tokens", () => {
        let tokens: TokenServer;
        let registry: RegistryServer;
        before(async () => {
            tokens = await startTokenServer({ username: "robot", password: "t0ken-pass", anonymousActions: ["pull"] });
            registry = await startRegistry({ token: tokens });
            const image = await singleLayout("v1", 1024, 5);
            await skopeo([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "robot:t0ken-pass",
                image,
                `docker://${registry.host}/src/app:v1`,
            ]);
        });
        after(async () => {
            await registry?.stop();
            await tokens?.close();
            await cleanupAll();
        });

        it("fetches a token per scope, caches it, and pushes with the right credentials", async () => {
            const creds = { kind: "basic", username: "robot", password: "t0ken-pass" } as const;
            const src = await openImageSource(`docker://${registry.host}/src/app:v1`, {
                registry: { ...HTTP, credentials: creds },
            });
            const dest = await openImageDestination(`docker://${registry.host}/dest/app:v1`, {
                registry: { ...HTTP, credentials: creds },
            });
            try {
                const before = tokens.requests.length;
                const digest = await pushThrough(src, dest);
                const used = tokens.requests.slice(before);
                assert.ok(used.every((r) => r.username === "robot" && r.status === 200));
                assert.ok(used.some((r) => r.scopes.includes("repository:dest/app:pull,push")));
                assert.ok(used.some((r) => r.scopes.includes("repository:src/app:pull")));
                // one token per scope set, not one per request
                assert.ok(used.length <= 3, `${used.length} token requests`);
                const raw = await skopeoRaw(`docker://${registry.host}/dest/app:v1`, [
                    "--tls-verify=false",
                    "--creds",
                    "robot:t0ken-pass",
                ]);
                assert.equal(digestOf(raw), digest);
            } finally {
                await src.close();
                await dest.close();
            }
        });

        it("pulls anonymously, and says why anonymous push and wrong credentials fail", async () => {
            const anonymous = await openImageSource(`docker://${registry.host}/src/app:v1`, { registry: HTTP });
            const anonymousDest = await openImageDestination(`docker://${registry.host}/dest/anon:v1`, {
                registry: HTTP,
            });
            const wrong = await openImageSource(`docker://${registry.host}/src/app:v1`, {
                registry: { ...HTTP, credentials: { kind: "basic", username: "robot", password: "wrong" } },
            });
            try {
                const top = await anonymous.getManifest();
                await assert.rejects(
                    pushThrough(anonymous, anonymousDest),
                    withCode("ERR_AUTH", /anonymous access to .*dest\/anon do not allow pull,push.*give credentials/),
                );
                await assert.rejects(
                    wrong.getManifest(top.digest),
                    withCode("ERR_AUTH", /wrong credentials for 127\.0\.0\.1:\d+ .*token service/),
                );
            } finally {
                await anonymous.close();
                await anonymousDest.close();
                await wrong.close();
            }
        });
    });
});
