import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { renderAptSources, renderHostFiles, renderRegistriesConf } from "../../../provider/host/render";

describe("host renderers", () => {
    it("renders a registries.conf v2 drop-in with one [[registry]] per source", () => {
        const text = renderRegistriesConf("site", [
            { source: "quay.io", mirrors: ["mirror.local:5000", "backup.local:5000/quay"] },
            {
                source: "registry.example/ns",
                mirrors: ["mirror.local:5000"],
                mirrorByDigestOnly: false,
                insecure: true,
            },
        ]);
        assert.match(text, /^# Managed by pulumi-airgap \(site\)/);
        assert.deepEqual(JSON.parse(JSON.stringify(parse(text))), {
            registry: [
                {
                    prefix: "quay.io",
                    location: "quay.io",
                    "mirror-by-digest-only": true,
                    mirror: [
                        { location: "mirror.local:5000", insecure: false },
                        { location: "backup.local:5000/quay", insecure: false },
                    ],
                },
                {
                    prefix: "registry.example/ns",
                    location: "registry.example/ns",
                    "mirror-by-digest-only": false,
                    mirror: [{ location: "mirror.local:5000", insecure: true }],
                },
            ],
        });
    });

    it("renders deb822 sources whose Signed-By names the keyring beside it", () => {
        const text = renderAptSources({
            name: "site-debian",
            uris: ["http://mirror.local/debian", "http://backup.local/debian"],
            suites: ["bookworm", "bookworm-updates"],
            components: ["main", "contrib"],
            architectures: ["amd64"],
            signedBy: "KEY",
        });
        const body = text.split("\n").filter((l) => !l.startsWith("#") && l !== "");
        assert.deepEqual(body, [
            "Types: deb",
            "URIs: http://mirror.local/debian http://backup.local/debian",
            "Suites: bookworm bookworm-updates",
            "Components: main contrib",
            "Architectures: amd64",
            "Signed-By: /etc/apt/keyrings/site-debian.asc",
        ]);
    });

    it("omits Components for exact-path suites", () => {
        const text = renderAptSources({ name: "flat", uris: ["http://m/repo"], suites: ["./"], signedBy: "K" });
        assert.doesNotMatch(text, /Components/);
    });

    it("lists every file in a stable order, texts ending in one newline", () => {
        const files = renderHostFiles({
            name: "site",
            target: { local: { root: "/" } },
            registries: [{ source: "quay.io", mirrors: ["m:5000"] }],
            caCertificates: [
                { name: "ca", pem: "\r\n-----BEGIN CERTIFICATE-----\r\nAAA\r\n-----END CERTIFICATE-----\r\n\r\n" },
            ],
            apt: [{ name: "deb", uris: ["http://m/d"], suites: ["s"], components: ["main"], signedBy: "KEY\n\n" }],
        });
        assert.deepEqual(
            files.map((f) => f.path),
            [
                "etc/containers/registries.conf.d/site.conf",
                "usr/local/share/ca-certificates/ca.crt",
                "etc/apt/keyrings/deb.asc",
                "etc/apt/sources.list.d/deb.sources",
            ],
        );
        assert.equal(files[1].content, "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n");
        assert.equal(files[2].content, "KEY\n");
        assert.ok(files.every((f) => f.mode === 0o644));
    });

    it("writes no registries drop-in when there are no registries", () => {
        const files = renderHostFiles({ name: "site", target: { local: {} }, registries: [] });
        assert.deepEqual(files, []);
    });
});
