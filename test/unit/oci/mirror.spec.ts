import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import {
    hostConfigFor,
    layoutRefName,
    mirrorReference,
    mirrorRegistries,
    mirrorTag,
    parseMirrorSource,
    parseMirrorTarget,
    sourceReference,
} from "../../../provider/oci/mirror";
import { validateImageMirrorSpec } from "../../../provider/oci/operations";
import { familiarString } from "../../../provider/oci/reference";

const d1 = `sha256:${"1".repeat(64)}`;
const d2 = `sha256:${"2".repeat(64)}`;

describe("ImageMirror naming and host configuration", () => {
    it("parses destinations and sources by transport", () => {
        assert.deepEqual(parseMirrorTarget("docker://mirror.local:5000", "destination"), {
            kind: "registry",
            registry: "mirror.local:5000",
        });
        assert.deepEqual(parseMirrorTarget("docker://mirror.local:5000/mirrors/", "destination"), {
            kind: "registry",
            registry: "mirror.local:5000/mirrors",
        });
        assert.deepEqual(parseMirrorTarget("oci:/srv/layout", "destination"), { kind: "oci", path: "/srv/layout" });
        assert.deepEqual(parseMirrorTarget("oci-archive:/srv/images.tar", "destination"), {
            kind: "oci-archive",
            path: "/srv/images.tar",
        });
        assert.throws(
            () => parseMirrorTarget("dir:/srv", "destination"),
            /^AirgapError: destination: "dir:\/srv" has an unknown transport/,
        );
        assert.throws(
            () => parseMirrorTarget("docker://Bad_Host!", "destination"),
            /destination: .*docker:\/\/host\[:port\]/,
        );
        assert.throws(() => parseMirrorTarget("oci:/srv/layout:app", "destination"), /without a reference/);
        assert.equal(parseMirrorSource(undefined), undefined);
        assert.equal(parseMirrorSource("docker://"), undefined);
        assert.deepEqual(parseMirrorSource("oci-archive:/x.tar"), { kind: "oci-archive", path: "/x.tar" });
        assert.throws(() => parseMirrorSource("docker://quay.io"), /source: .*give no host/);
    });

    it("keeps the source tag, and makes a stable tag for digest-only images", () => {
        assert.equal(mirrorTag(sourceReference("quay.io/org/app:1.2")), "1.2");
        assert.equal(mirrorTag(sourceReference(`quay.io/org/app:1.2@${d1}`)), "1.2");
        assert.equal(mirrorTag(sourceReference(`quay.io/org/app@${d1}`)), `sha256-${"1".repeat(64)}`);
        const sha512 = `sha512:${"f".repeat(128)}`;
        const long = mirrorTag(sourceReference(`quay.io/org/app@${sha512}`));
        assert.equal(long.length, 128);
        assert.ok(long.startsWith("sha512-fff"));
        assert.equal(mirrorTag(sourceReference("docker://nginx")), "latest");
    });

    it("names mirror repositories with and without the source registry", () => {
        const ref = sourceReference("quay.io/org/app:1.2");
        assert.equal(
            familiarString(mirrorReference(ref, "mirror.local:5000", "keep-registry")),
            "mirror.local:5000/quay.io/org/app:1.2",
        );
        assert.equal(
            familiarString(mirrorReference(ref, "mirror.local:5000", "strip-registry")),
            "mirror.local:5000/org/app:1.2",
        );
        assert.equal(
            familiarString(mirrorReference(sourceReference(`nginx@${d1}`), "mirror.local:5000/ns", "keep-registry")),
            `mirror.local:5000/ns/docker.io/library/nginx:sha256-${"1".repeat(64)}`,
        );
        assert.equal(layoutRefName(ref), "quay.io/org/app:1.2");
        assert.equal(layoutRefName(sourceReference("nginx")), "docker.io/library/nginx:latest");
    });

    it("renders registries entries, registries.conf and an ImageDigestMirrorSet per source registry", () => {
        const spec = {
            images: { "quay.io/org/app:1.2": d1, [`quay.io/other/x@${d2}`]: d2, "registry.example/ns/tool:3": d2 },
            destination: "docker://mirror.local:5000/site",
            repositoryPath: "keep-registry" as const,
            tls: { insecureRegistries: ["mirror.local:5000"] },
            name: "Release Images",
        };
        assert.deepEqual(mirrorRegistries(spec), [
            {
                source: "quay.io",
                mirrors: ["mirror.local:5000/site/quay.io"],
                mirrorByDigestOnly: true,
                insecure: true,
            },
            {
                source: "registry.example",
                mirrors: ["mirror.local:5000/site/registry.example"],
                mirrorByDigestOnly: true,
                insecure: true,
            },
        ]);
        const strip = mirrorRegistries({ ...spec, repositoryPath: "strip-registry", tls: undefined });
        assert.deepEqual(
            strip.map((r) => [r.source, r.mirrors[0], r.insecure]),
            [
                ["quay.io", "mirror.local:5000/site", undefined],
                ["registry.example", "mirror.local:5000/site", undefined],
            ],
        );
        const out = hostConfigFor(spec);
        const conf = parseToml(out.registriesConf) as {
            registry: {
                prefix: string;
                location: string;
                "mirror-by-digest-only": boolean;
                mirror: { location: string; insecure: boolean }[];
            }[];
        };
        assert.deepEqual(JSON.parse(JSON.stringify(conf.registry[0])), {
            prefix: "quay.io",
            location: "quay.io",
            "mirror-by-digest-only": true,
            mirror: [{ location: "mirror.local:5000/site/quay.io", insecure: true }],
        });
        const idms = parseYaml(out.imageDigestMirrorSet);
        assert.deepEqual(idms, {
            apiVersion: "config.openshift.io/v1",
            kind: "ImageDigestMirrorSet",
            metadata: { name: "release-images" },
            spec: {
                imageDigestMirrors: [
                    { source: "quay.io", mirrors: ["mirror.local:5000/site/quay.io"] },
                    { source: "registry.example", mirrors: ["mirror.local:5000/site/registry.example"] },
                ],
            },
        });
        assert.deepEqual(hostConfigFor({ ...spec, destination: "oci-archive:/x.tar" }), {
            registries: [],
            registriesConf: "",
            imageDigestMirrorSet: "",
        });
    });

    describe("validation names the argument", () => {
        const good = { images: { "quay.io/org/app:1.2": d1 }, destination: "docker://mirror.local:5000" };
        const failures = async (spec: object) =>
            (await validateImageMirrorSpec({ ...good, ...spec } as never)).map((f) => `${f.argument}: ${f.problem}`);

        it("accepts a good spec", async () => {
            assert.deepEqual(await failures({}), []);
            assert.deepEqual(
                await failures({
                    source: "oci-archive:/x.tar",
                    platforms: ["linux/amd64", "linux/arm64/v8"],
                    auth: JSON.stringify({ auths: { "quay.io": { auth: Buffer.from("u:p").toString("base64") } } }),
                    tls: { insecureRegistries: ["127.0.0.1:5000", "mirror.local"] },
                }),
                [],
            );
        });

        it("refuses each bad argument", async () => {
            assert.match(
                (await failures({ images: { "quay.io/Org/app": d1 } })).join("\n"),
                /^images: invalid image reference "quay\.io\/Org\/app"/,
            );
            assert.match(
                (await failures({ images: { "quay.io/org/app": "latest" } })).join("\n"),
                /^images: quay\.io\/org\/app: "latest" is not a sha256/,
            );
            assert.match(
                (await failures({ destination: "ftp://x" })).join("\n"),
                /^destination: "ftp:\/\/x" has an unknown transport/,
            );
            assert.match(
                (await failures({ source: "dir:/x" })).join("\n"),
                /^source: "dir:\/x" has an unknown transport/,
            );
            assert.match(
                (await failures({ repositoryPath: "flat" })).join("\n"),
                /^repositoryPath: "flat" must be "keep-registry" or "strip-registry"/,
            );
            assert.match(
                (await failures({ images: { "127.0.0.1:5000/org/app:1": d1 } })).join("\n"),
                /^repositoryPath: 127\.0\.0\.1:5000\/org\/app:1: .*use "strip-registry"/,
            );
            assert.deepEqual(
                await failures({ images: { "127.0.0.1:5000/org/app:1": d1 }, repositoryPath: "strip-registry" }),
                [],
            );
            assert.match(
                (await failures({ platforms: ["linux/amd64", "amd64"] })).join("\n"),
                /^platforms\[1\]: "amd64" is not "os\/architecture/,
            );
            const auth = await failures({ auth: "user:hunter2-secret" });
            assert.match(auth.join("\n"), /^auth: not valid JSON; give a docker config\.json/);
            assert.ok(!auth.join("\n").includes("hunter2"), "the message must not quote the secret");
            assert.match((await failures({ auth: '{"auths": []}' })).join("\n"), /^auth: .*"auths" must be an object/);
            assert.match(
                (await failures({ tls: { caCert: "nope" } })).join("\n"),
                /^tls\.caCert: must hold one or more PEM/,
            );
            assert.match(
                (await failures({ tls: { insecureRegistries: ["http://x"] } })).join("\n"),
                /^tls\.insecureRegistries:/,
            );
        });
    });
});
