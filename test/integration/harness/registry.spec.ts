import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeOciImage, type OciImage, OCI_INDEX, OCI_MANIFEST } from "../../harness/fixtures/oci";
import { run } from "../../harness/servers/process";
import { getStatus, type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { startTokenServer, type TokenServer } from "../../harness/servers/token";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/** skopeo with a policy of its own, so the machine's /etc/containers does not decide. */
async function skopeo(args: string[], check = true) {
    return run("skopeo", ["--policy", policyPath, ...args], { check, timeoutMs: 120_000 });
}

let policyPath: string;

describe("harness: docker-registry", function () {
    this.timeout(180_000);
    let image: OciImage;
    let multi: OciImage;

    before(async () => {
        const dir = await makeTempDir("skopeo-policy");
        policyPath = join(dir, "policy.json");
        await writeFile(policyPath, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
        image = await makeOciImage({ tag: "v1", files: { "/hello.txt": "hello from the harness\n" } });
        multi = await makeOciImage({
            tag: "multi",
            platforms: [
                { os: "linux", architecture: "amd64" },
                { os: "linux", architecture: "arm64", variant: "v8" },
            ],
        });
    });
    after(() => cleanupAll());

    it("builds OCI layouts that skopeo reads", async () => {
        const inspected = JSON.parse((await skopeo(["inspect", "--raw", image.reference])).stdout);
        assert.equal(inspected.mediaType, OCI_MANIFEST);
        assert.equal(image.top.mediaType, OCI_MANIFEST);
        const index = JSON.parse((await skopeo(["inspect", "--raw", multi.reference])).stdout);
        assert.equal(index.mediaType, OCI_INDEX);
        assert.equal(index.manifests.length, 2);
    });

    describe("plain HTTP, no auth", () => {
        let registry: RegistryServer;
        before(async () => {
            registry = await startRegistry();
        });
        after(() => registry?.stop());

        it("answers GET /v2/ on 127.0.0.1", async () => {
            assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
            assert.equal(registry.url, `http://${registry.host}`);
            assert.equal(await getStatus(`${registry.url}/v2/`), 200);
        });

        it("takes a skopeo copy and serves it back by tag and digest", async () => {
            const dest = `docker://${registry.host}/harness/hello:v1`;
            await skopeo(["copy", "--dest-tls-verify=false", image.reference, dest]);
            const info = JSON.parse((await skopeo(["inspect", "--tls-verify=false", dest])).stdout);
            assert.equal(info.Digest, image.top.digest);
            assert.equal(info.Architecture, "amd64");
            const byDigest = `docker://${registry.host}/harness/hello@${image.top.digest}`;
            const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", byDigest]);
            assert.equal(JSON.parse(raw.stdout).mediaType, OCI_MANIFEST);
        });

        it("keeps a multi-platform index with --all and allows deletes", async () => {
            const dest = `docker://${registry.host}/harness/multi:multi`;
            await skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", multi.reference, dest]);
            const raw = JSON.parse((await skopeo(["inspect", "--raw", "--tls-verify=false", dest])).stdout);
            assert.equal(raw.mediaType, OCI_INDEX);
            assert.deepEqual(
                raw.manifests.map((m: { digest: string }) => m.digest),
                multi.manifests.map((m) => m.digest),
            );
            await skopeo(["delete", "--tls-verify=false", dest]);
            const gone = await skopeo(["inspect", "--raw", "--tls-verify=false", dest], false);
            assert.notEqual(gone.code, 0);
        });
    });

    it("registries started at once each get their own port and their own process", async () => {
        const registries = await Promise.all(Array.from({ length: 4 }, () => startRegistry()));
        try {
            const ports = registries.map((r) => r.port);
            assert.equal(new Set(ports).size, ports.length, `ports handed out twice: ${ports.join(", ")}`);
            // Stopping one frees its port and leaves the others answering: each is its own process.
            await registries[0]!.stop();
            await assert.rejects(getStatus(`${registries[0]!.url}/v2/`), /ECONNREFUSED/);
            for (const r of registries.slice(1)) {
                assert.equal(await getStatus(`${r.url}/v2/`), 200);
            }
        } finally {
            await Promise.all(registries.map((r) => r.stop()));
        }
    });

    describe("TLS and htpasswd auth", () => {
        let registry: RegistryServer;
        before(async () => {
            registry = await startRegistry({ tls: true, auth: { username: "mirror", password: "s3cret pass" } });
        });
        after(() => registry?.stop());

        it("serves HTTPS with the generated CA and asks for credentials", async () => {
            assert.equal(registry.url, `https://${registry.host}`);
            assert.ok(registry.caCertPem?.includes("BEGIN CERTIFICATE"));
            assert.equal(await getStatus(`${registry.url}/v2/`, registry.caCertPem), 401);
            await assert.rejects(getStatus(`${registry.url}/v2/`), /self-signed|unable to verify|certificate/i);
        });

        it("accepts skopeo with --cert-dir and --creds, and refuses wrong credentials", async () => {
            const dest = `docker://${registry.host}/harness/secure:v1`;
            const creds = `${registry.username}:${registry.password}`;
            await skopeo(["copy", "--dest-cert-dir", registry.certDir!, "--dest-creds", creds, image.reference, dest]);
            const info = JSON.parse(
                (await skopeo(["inspect", "--cert-dir", registry.certDir!, "--creds", creds, dest])).stdout,
            );
            assert.equal(info.Digest, image.top.digest);

            const wrong = await skopeo(
                ["inspect", "--cert-dir", registry.certDir!, "--creds", "mirror:nope", dest],
                false,
            );
            assert.notEqual(wrong.code, 0);
            assert.match(wrong.stderr, /unauthorized|authentication required|401/i);
            const noCa = await skopeo(["inspect", "--creds", creds, dest], false);
            assert.notEqual(noCa.code, 0);
            assert.match(noCa.stderr, /certificate/i);
        });
    });

    describe("bearer-token auth", () => {
        let tokens: TokenServer;
        let registry: RegistryServer;
        before(async () => {
            tokens = await startTokenServer({ username: "robot", password: "t0ken-pass", anonymousActions: ["pull"] });
            registry = await startRegistry({ token: tokens });
        });
        after(async () => {
            await registry?.stop();
            await tokens?.close();
        });

        it("sends clients to the token server and accepts its tokens", async () => {
            assert.equal(await getStatus(`${registry.url}/v2/`), 401);
            const dest = `docker://${registry.host}/harness/tokened:v1`;
            await skopeo([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "robot:t0ken-pass",
                image.reference,
                dest,
            ]);
            assert.ok(tokens.requests.some((r) => r.username === "robot" && r.status === 200));
            assert.ok(
                tokens.requests.some((r) => r.scopes.some((s) => s.includes("harness/tokened") && s.includes("push"))),
            );

            // anonymous pull is granted, anonymous push is not
            const info = JSON.parse((await skopeo(["inspect", "--tls-verify=false", "--no-creds", dest])).stdout);
            assert.equal(info.Digest, image.top.digest);
            const push = await skopeo(
                ["copy", "--dest-tls-verify=false", "--dest-no-creds", image.reference, `${dest.slice(0, -3)}:anon`],
                false,
            );
            assert.notEqual(push.code, 0);
            assert.match(push.stderr, /denied|unauthorized|authentication required/i);

            const wrong = await skopeo(["inspect", "--tls-verify=false", "--creds", "robot:wrong", dest], false);
            assert.notEqual(wrong.code, 0);
            assert.match(wrong.stderr, /unauthorized|401/i);
        });
    });
});
