import assert from "node:assert/strict";
import {
    basicAuthorization,
    bearerChallenge,
    findCredentials,
    normalizeAuthKey,
    parseDockerConfig,
    parseWwwAuthenticate,
} from "../../../provider/oci/auth";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

describe("oci/auth", () => {
    it("parses a Bearer challenge", () => {
        const header =
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"';
        const challenges = parseWwwAuthenticate(header);
        assert.deepEqual(challenges, [
            {
                scheme: "bearer",
                params: {
                    realm: "https://auth.docker.io/token",
                    service: "registry.docker.io",
                    scope: "repository:library/nginx:pull",
                },
            },
        ]);
        assert.deepEqual(bearerChallenge(challenges), {
            realm: "https://auth.docker.io/token",
            service: "registry.docker.io",
            scope: "repository:library/nginx:pull",
        });
    });

    it("parses several challenges, quoted commas and escapes, bare tokens and token68", () => {
        assert.deepEqual(
            parseWwwAuthenticate(
                'Basic realm="Registry Realm", Bearer realm=https://a/token, scope="repository:x:pull,push", error = "in\\"valid"',
            ),
            [
                { scheme: "basic", params: { realm: "Registry Realm" } },
                {
                    scheme: "bearer",
                    params: { realm: "https://a/token", scope: "repository:x:pull,push", error: 'in"valid' },
                },
            ],
        );
        assert.deepEqual(parseWwwAuthenticate("Negotiate abc+/==, Basic"), [
            { scheme: "negotiate", params: { token68: "abc+/==" } },
            { scheme: "basic", params: {} },
        ]);
        assert.deepEqual(parseWwwAuthenticate(""), []);
        assert.equal(bearerChallenge(parseWwwAuthenticate('Basic realm="x"')), undefined);
    });

    it("rejects malformed headers and Bearer without realm", () => {
        assert.throws(() => parseWwwAuthenticate('Bearer realm="open'), {
            code: "ERR_PARSE",
            message: /unterminated quoted string/,
        });
        assert.throws(() => parseWwwAuthenticate("realm=x"), { code: "ERR_PARSE", message: /before any scheme/ });
        assert.throws(() => parseWwwAuthenticate('Bearer realm="a" service="b"'), { code: "ERR_PARSE" });
        assert.throws(() => bearerChallenge(parseWwwAuthenticate('Bearer service="x"')), {
            code: "ERR_PARSE",
            message: /without a realm/,
        });
    });

    it("normalises config keys", () => {
        const cases: [string, string][] = [
            ["https://index.docker.io/v1/", "docker.io"],
            ["index.docker.io", "docker.io"],
            ["registry-1.docker.io", "docker.io"],
            ["https://quay.io", "quay.io"],
            ["http://Mirror:5000/v2/", "mirror:5000"],
            ["quay.io/org/", "quay.io/org"],
        ];
        for (const [key, want] of cases) {
            assert.equal(normalizeAuthKey(key), want, key);
        }
    });

    it("finds credentials by registry, with the most specific key winning", () => {
        const config = parseDockerConfig(
            JSON.stringify({
                auths: {
                    "https://index.docker.io/v1/": { auth: b64("hub:hubpass") },
                    "quay.io": { username: "q", password: "qp" },
                    "quay.io/org": { auth: b64("org:p:with:colons") },
                    "http://mirror:5000": { auth: b64("m:mp") },
                    "ghcr.io": { identitytoken: "refresh" },
                    "empty.io": {},
                },
                credHelpers: { "gcr.io": "gcloud" },
            }),
        );
        assert.deepEqual(findCredentials(config, "docker.io/library/nginx"), {
            kind: "basic",
            username: "hub",
            password: "hubpass",
        });
        assert.deepEqual(findCredentials(config, "registry-1.docker.io"), {
            kind: "basic",
            username: "hub",
            password: "hubpass",
        });
        assert.deepEqual(findCredentials(config, "quay.io/other/app"), {
            kind: "basic",
            username: "q",
            password: "qp",
        });
        assert.deepEqual(findCredentials(config, "quay.io/org/app"), {
            kind: "basic",
            username: "org",
            password: "p:with:colons",
        });
        assert.deepEqual(findCredentials(config, "mirror:5000/x"), { kind: "basic", username: "m", password: "mp" });
        assert.deepEqual(findCredentials(config, "ghcr.io/a"), { kind: "identity-token", token: "refresh" });
        assert.equal(findCredentials(config, "empty.io"), undefined);
        assert.equal(findCredentials(config, "gcr.io/x"), undefined);
        assert.equal(findCredentials(config, "mirror:5001"), undefined);
    });

    it("reports malformed configs naming the key, never the secret", () => {
        assert.throws(() => parseDockerConfig("{", "/root/.docker/config.json"), {
            code: "ERR_PARSE",
            message: /^\/root\/\.docker\/config\.json: not valid JSON/,
        });
        assert.throws(() => parseDockerConfig(JSON.stringify({ auths: [] })), { code: "ERR_PARSE" });
        assert.throws(() => parseDockerConfig(JSON.stringify({ auths: { "a.io": { auth: 5 } } })), {
            code: "ERR_PARSE",
            message: /auths\["a\.io"\]\.auth must be a string/,
        });
        const noColon = parseDockerConfig(JSON.stringify({ auths: { "a.io": { auth: b64("secretvalue") } } }));
        assert.throws(
            () => findCredentials(noColon, "a.io"),
            (err: Error & { code?: string }) =>
                err.code === "ERR_PARSE" &&
                err.message === 'auths["a.io"].auth does not decode to "username:password"' &&
                !err.message.includes("secretvalue"),
        );
        const notB64 = parseDockerConfig(JSON.stringify({ auths: { "a.io": { auth: "!!!" } } }));
        assert.throws(() => findCredentials(notB64, "a.io"), { code: "ERR_PARSE", message: /is not base64/ });
        assert.deepEqual(parseDockerConfig("{}"), { auths: {} });
    });

    it("builds a Basic authorization header", () => {
        assert.equal(basicAuthorization("user", "pa:ss"), `Basic ${b64("user:pa:ss")}`);
    });
});
