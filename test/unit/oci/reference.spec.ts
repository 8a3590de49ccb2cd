import assert from "node:assert/strict";
import {
    type DockerReference,
    familiarName,
    familiarString,
    fullName,
    fullString,
    nameOnly,
    parseDockerReference,
    withDigest,
    withRegistry,
    withTag,
} from "../../../provider/oci/reference";

const D = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("oci/reference", () => {
    it("normalises names as the distribution grammar does", () => {
        const cases: [string, DockerReference][] = [
            ["nginx", { domain: "docker.io", path: "library/nginx" }],
            ["nginx:1.27", { domain: "docker.io", path: "library/nginx", tag: "1.27" }],
            ["user/app", { domain: "docker.io", path: "user/app" }],
            ["docker.io/nginx", { domain: "docker.io", path: "library/nginx" }],
            ["index.docker.io/library/nginx:latest", { domain: "docker.io", path: "library/nginx", tag: "latest" }],
            ["quay.io/org/app:v1", { domain: "quay.io", path: "org/app", tag: "v1" }],
            ["localhost/app", { domain: "localhost", path: "app" }],
            ["localhost:5000/app:v1", { domain: "localhost:5000", path: "app", tag: "v1" }],
            ["registry.local:5000/a/b/c", { domain: "registry.local:5000", path: "a/b/c" }],
            ["[::1]:5000/app", { domain: "[::1]:5000", path: "app" }],
            ["Registry/app", { domain: "Registry", path: "app" }],
            [`nginx@${D}`, { domain: "docker.io", path: "library/nginx", digest: D }],
            [`quay.io/org/app:v1@${D}`, { domain: "quay.io", path: "org/app", tag: "v1", digest: D }],
            ["a/b__c-d---e.f_g", { domain: "docker.io", path: "a/b__c-d---e.f_g" }],
            // Without a "/", "localhost:5000" is the repository "localhost" with tag "5000".
            ["localhost:5000", { domain: "docker.io", path: "library/localhost", tag: "5000" }],
        ];
        for (const [input, want] of cases) {
            assert.deepEqual(parseDockerReference(input), want, input);
        }
    });

    it("gives familiar and fully qualified forms", () => {
        const cases: [string, string, string, string][] = [
            ["nginx:1.27", "nginx", "docker.io/library/nginx", "docker.io/library/nginx:1.27"],
            ["docker.io/user/app", "user/app", "docker.io/user/app", "docker.io/user/app"],
            ["docker.io/library/a/b", "library/a/b", "docker.io/library/a/b", "docker.io/library/a/b"],
            [`quay.io/org/app:v1@${D}`, "quay.io/org/app", "quay.io/org/app", `quay.io/org/app:v1@${D}`],
        ];
        for (const [input, familiar, full, fullStr] of cases) {
            const ref = parseDockerReference(input);
            assert.equal(familiarName(ref), familiar, input);
            assert.equal(fullName(ref), full, input);
            assert.equal(fullString(ref), fullStr, input);
            assert.deepEqual(parseDockerReference(familiarString(ref)), ref, input);
            assert.deepEqual(parseDockerReference(fullString(ref)), ref, input);
        }
        assert.equal(familiarString(parseDockerReference("docker.io/library/nginx:1.27")), "nginx:1.27");
    });

    it("rejects malformed references with ERR_PARSE naming the string and the rule", () => {
        const cases: [string, RegExp][] = [
            ["", /empty/],
            ["Nginx", /must be lower-case/],
            ["quay.io/Org/app", /"Org\/app" must be lower-case/],
            ["nginx:", /tag ""/],
            ["nginx:-bad", /tag "-bad"/],
            [`nginx:${"a".repeat(129)}`, /tag/],
            ["nginx@sha256:abc", /not a sha256 or sha512 digest/],
            [`nginx@md5:${"a".repeat(32)}`, /not a sha256 or sha512 digest/],
            ["a//b", /repository name "a\/\/b"/],
            ["app_/x", /repository name/],
            [":tag", /repository name is empty/],
            ["-host.io/app", /not a valid registry host/],
            ["0123456789abcdef".repeat(4), /64-character hex/],
            [`quay.io/${"a".repeat(250)}`, /longer than 255/],
            ["nginx b", /repository name/],
        ];
        for (const [input, message] of cases) {
            assert.throws(
                () => parseDockerReference(input),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" &&
                    err.message.startsWith(`invalid image reference "${input}": `) &&
                    message.test(err.message),
                input,
            );
        }
    });

    it("computes mirror destinations keeping or stripping the source registry", () => {
        const app = parseDockerReference(`quay.io/org/app:v1@${D}`);
        assert.deepEqual(withRegistry(app, "mirror:5000", "keep-registry"), {
            domain: "mirror:5000",
            path: "quay.io/org/app",
            tag: "v1",
            digest: D,
        });
        assert.deepEqual(withRegistry(app, "mirror:5000", "strip-registry"), {
            domain: "mirror:5000",
            path: "org/app",
            tag: "v1",
            digest: D,
        });
        assert.equal(
            fullString(withRegistry(parseDockerReference("nginx:1.27"), "mirror.local/mirrors", "keep-registry")),
            "mirror.local/mirrors/docker.io/library/nginx:1.27",
        );
        assert.equal(
            fullString(withRegistry(parseDockerReference("nginx"), "mirror:5000", "strip-registry")),
            "mirror:5000/library/nginx",
        );
    });

    it("refuses mirror destinations that cannot be expressed", () => {
        const withPort = parseDockerReference("registry.local:5000/app");
        assert.throws(() => withRegistry(withPort, "mirror:5000", "keep-registry"), {
            code: "ERR_INVALID_ARGUMENT",
            message: /cannot be kept as a repository path component.*use "strip-registry"/,
        });
        assert.throws(() => withRegistry(withPort, "http://mirror", "strip-registry"), {
            code: "ERR_INVALID_ARGUMENT",
            message: /^registry: /,
        });
        assert.throws(() => withRegistry(withPort, "mirror/Bad", "strip-registry"), {
            code: "ERR_INVALID_ARGUMENT",
        });
        const long = parseDockerReference(`quay.io/${"a".repeat(240)}`);
        assert.throws(() => withRegistry(long, "mirror.example.com:5000", "keep-registry"), {
            code: "ERR_INVALID_ARGUMENT",
            message: /longer than 255/,
        });
    });

    it("replaces tags and digests", () => {
        const ref = parseDockerReference(`app:v1@${D}`);
        assert.deepEqual(withTag(ref, "v2"), { domain: "docker.io", path: "library/app", tag: "v2", digest: D });
        const other = `sha256:${"f".repeat(64)}`;
        assert.deepEqual(withDigest(ref, other), {
            domain: "docker.io",
            path: "library/app",
            tag: "v1",
            digest: other,
        });
        assert.deepEqual(nameOnly(ref), { domain: "docker.io", path: "library/app" });
        assert.throws(() => withTag(ref, ".x"), { code: "ERR_INVALID_ARGUMENT", argument: "tag" });
        assert.throws(() => withDigest(ref, "sha256:x"), { code: "ERR_INVALID_ARGUMENT", argument: "digest" });
    });
});
