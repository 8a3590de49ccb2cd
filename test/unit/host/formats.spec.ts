import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { disableDeb822, disableOneLine, otherAptSourceFiles } from "../../../provider/host/formats/apt";
import { renderContainerdHosts } from "../../../provider/host/formats/containerd";
import { renderDaemonJson } from "../../../provider/host/formats/docker";
import { renderPipConf } from "../../../provider/host/formats/pip";
import { derivedPaths, listDirs, renderHostFiles } from "../../../provider/host/render";
import type { HostMirrorSpec } from "../../../provider/host/types";
import { validateHostMirrorSpec } from "../../../provider/host/validate";

const HEADER = "# Managed by pulumi-airgap (site). Local edits are reported as drift and reverted by `pulumi up`.\n";
const base = { name: "site", target: { local: { root: "/" } } };

describe("containerd hosts.toml", () => {
    it("maps a digest-only mirror with a namespace to a pull-only host with override_path", () => {
        const text = renderContainerdHosts({
            name: "site",
            registry: "quay.io",
            mirrors: ["mirror.local:5000/quay", "backup.local"],
            mirrorByDigestOnly: true,
            insecure: false,
            ca: ["/usr/local/share/ca-certificates/ca.crt"],
        });
        assert.equal(
            text,
            `${HEADER}
server = "https://quay.io"

[host."https://mirror.local:5000/v2/quay"]
  capabilities = ["pull"]
  override_path = true
  ca = ["/usr/local/share/ca-certificates/ca.crt"]

[host."https://backup.local"]
  capabilities = ["pull"]
  ca = ["/usr/local/share/ca-certificates/ca.crt"]
`,
        );
        parse(text);
    });

    it("writes an insecure mirror as unverified HTTPS then plain HTTP, and Docker Hub's API host as server", () => {
        const text = renderContainerdHosts({
            name: "site",
            registry: "docker.io",
            mirrors: ["127.0.0.1:5000"],
            mirrorByDigestOnly: false,
            insecure: true,
            ca: ["/ignored.crt"],
        });
        assert.equal(
            text,
            `${HEADER}
server = "https://registry-1.docker.io"

[host."https://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
`,
        );
    });

    it("gives one file per registry and a _default catch-all without server, CA paths as the trust asks", () => {
        const files = renderHostFiles({
            ...base,
            caTrust: "rhel",
            caCertificates: [{ name: "site-ca", pem: "PEM" }],
            registries: [
                { source: "quay.io", mirrors: ["m:5000/quay"] },
                { source: "registry.example:8443", mirrors: ["m:5000/example"] },
            ],
            containerd: { defaultMirror: ["m:5000/all"] },
        });
        assert.deepEqual(
            files.map((f) => f.path),
            [
                "etc/containers/registries.conf.d/site.conf",
                "etc/pki/ca-trust/source/anchors/site-ca.crt",
                "etc/containerd/certs.d/quay.io/hosts.toml",
                "etc/containerd/certs.d/registry.example:8443/hosts.toml",
                "etc/containerd/certs.d/_default/hosts.toml",
            ],
        );
        const def = JSON.parse(JSON.stringify(parse(files[4]!.content))) as Record<string, unknown>;
        assert.equal(def.server, undefined);
        assert.deepEqual(def.host, {
            "https://m:5000/v2/all": {
                capabilities: ["pull", "resolve"],
                override_path: true,
                ca: ["/etc/pki/ca-trust/source/anchors/site-ca.crt"],
            },
        });
        assert.equal((parse(files[3]!.content) as { server: string }).server, "https://registry.example:8443");
    });

    it("writes nothing for containerd unless asked", () => {
        const files = renderHostFiles({ ...base, registries: [{ source: "quay.io", mirrors: ["m"] }] });
        assert.deepEqual(
            files.map((f) => f.path),
            ["etc/containers/registries.conf.d/site.conf"],
        );
    });
});

describe("Docker daemon.json", () => {
    const settings = { mirrors: ["http://127.0.0.1:5000"], insecure: ["127.0.0.1:5000"] };

    it("writes a new file when there is none", () => {
        assert.equal(
            renderDaemonJson(undefined, settings),
            '{\n  "registry-mirrors": [\n    "http://127.0.0.1:5000"\n  ],\n  "insecure-registries": [\n    "127.0.0.1:5000"\n  ]\n}\n',
        );
        assert.equal(renderDaemonJson("  \n", { mirrors: [], insecure: [] }), "{}\n");
    });

    it("merges into an existing file: other keys and their formatting kept, tabs followed", () => {
        const current = '{\n\t"debug": true,\n\t"labels": [ "a=1",  "b=2" ],\n\t"features": {"buildkit": false}\n}\n';
        const merged = renderDaemonJson(current, settings);
        assert.equal(
            merged,
            '{\n\t"debug": true,\n\t"labels": [ "a=1",  "b=2" ],\n\t"features": {"buildkit": false},\n' +
                '\t"registry-mirrors": [\n\t\t"http://127.0.0.1:5000"\n\t],\n\t"insecure-registries": [\n\t\t"127.0.0.1:5000"\n\t]\n}\n',
        );
        // Rendering the written file again changes nothing.
        assert.equal(renderDaemonJson(merged, settings), merged);
    });

    it("replaces the keys it owns, and removes them when the configuration has none", () => {
        const current = '{\n    "registry-mirrors": ["https://old.example"],\n    "log-level": "warn"\n}';
        const replaced = renderDaemonJson(current, { mirrors: ["https://m.example"], insecure: [] });
        assert.deepEqual(JSON.parse(replaced), { "registry-mirrors": ["https://m.example"], "log-level": "warn" });
        assert.match(replaced, /^ {4}"log-level": "warn"$/m);
        assert.equal(renderDaemonJson(current, { mirrors: [], insecure: [] }), '{\n    "log-level": "warn"\n}');
    });

    it("refuses a daemon.json that is not a JSON object, naming the path", () => {
        for (const bad of ['{ "debug": true, }', "// comment\n{}", "[1]", "{"]) {
            assert.throws(
                () => renderDaemonJson(bad, settings),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" && err.message.includes("/etc/docker/daemon.json"),
                bad,
            );
        }
        assert.throws(
            () =>
                renderHostFiles(
                    { ...base, docker: true, registries: [{ source: "docker.io", mirrors: ["m:5000"] }] },
                    { "etc/docker/daemon.json": "{ nope" },
                ),
            /etc\/docker\/daemon\.json is not valid JSON/,
        );
    });

    it("takes the docker.io entry's mirrors as registry-mirrors, and every insecure mirror host", () => {
        const spec: HostMirrorSpec = {
            ...base,
            docker: true,
            registries: [
                { source: "docker.io", mirrors: ["hub.local:5000", "hub2.local"], mirrorByDigestOnly: false },
                { source: "quay.io", mirrors: ["m.local:5000/quay"], insecure: true },
            ],
        };
        assert.deepEqual(derivedPaths(spec), ["etc/docker/daemon.json"]);
        const file = renderHostFiles(spec, { "etc/docker/daemon.json": '{"debug":true}' }).at(-1)!;
        assert.equal(file.path, "etc/docker/daemon.json");
        assert.deepEqual(JSON.parse(file.content), {
            debug: true,
            "registry-mirrors": ["https://hub.local:5000", "https://hub2.local"],
            "insecure-registries": ["m.local:5000"],
        });
    });
});

describe("APT: disabling the host's other sources", () => {
    it("sets Enabled: no in every deb822 stanza, keeping comments and continuation lines", () => {
        const text = [
            "# main archive",
            "Types: deb",
            "URIs: http://archive.example/debian",
            "Suites: bookworm",
            "Components: main",
            "Signed-By:",
            " -----BEGIN PGP PUBLIC KEY BLOCK-----",
            " .",
            " -----END PGP PUBLIC KEY BLOCK-----",
            "",
            "Types: deb-src",
            "enabled: yes",
            "URIs: http://archive.example/debian",
            "# trailing comment",
            "",
        ].join("\n");
        const disabled = disableDeb822(text);
        assert.equal(
            disabled,
            [
                "# main archive",
                "Types: deb",
                "URIs: http://archive.example/debian",
                "Suites: bookworm",
                "Components: main",
                "Signed-By:",
                " -----BEGIN PGP PUBLIC KEY BLOCK-----",
                " .",
                " -----END PGP PUBLIC KEY BLOCK-----",
                "Enabled: no",
                "",
                "Types: deb-src",
                "Enabled: no",
                "URIs: http://archive.example/debian",
                "# trailing comment",
                "",
            ].join("\n"),
        );
        assert.equal(disableDeb822(disabled), disabled);
    });

    it("comments out one-line entries", () => {
        const text = "# comment\ndeb http://a/debian bookworm main\n\n  deb-src http://a/debian bookworm main\n";
        const disabled = disableOneLine(text);
        assert.equal(
            disabled,
            "# comment\n# deb http://a/debian bookworm main\n\n#   deb-src http://a/debian bookworm main\n",
        );
        assert.equal(disableOneLine(disabled), disabled);
    });

    it("lists sources.list and the source parts apt reads, except the configuration's own", () => {
        assert.deepEqual(
            otherAptSourceFiles("b.sources\nREADME\na.list\nsite.sources\nx.list.save\n", [
                "etc/apt/sources.list.d/site.sources",
            ]),
            ["etc/apt/sources.list", "etc/apt/sources.list.d/a.list", "etc/apt/sources.list.d/b.sources"],
        );
    });

    it("renders the disabled files from the host's text; absent and pulumi-airgap's own files are left", () => {
        const spec: HostMirrorSpec = {
            ...base,
            aptDisableOtherSources: true,
            apt: [{ name: "site", uris: ["http://m/d"], suites: ["s"], components: ["main"], signedBy: "K" }],
        };
        assert.deepEqual(listDirs(spec), ["etc/apt/sources.list.d"]);
        const current = {
            "etc/apt/sources.list.d/": "debian.sources\nother.list\nsite.sources\n",
            "etc/apt/sources.list": undefined,
            "etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: http://a/debian\nSuites: s\nComponents: main\n",
            "etc/apt/sources.list.d/other.list": `${HEADER}deb http://b/ s main\n`,
        };
        assert.deepEqual(derivedPaths(spec, current), [
            "etc/apt/sources.list",
            "etc/apt/sources.list.d/debian.sources",
            "etc/apt/sources.list.d/other.list",
        ]);
        const files = renderHostFiles(spec, current);
        assert.deepEqual(
            files.map((f) => [f.path, f.content]),
            [
                ["etc/apt/keyrings/site.asc", "K\n"],
                ["etc/apt/sources.list.d/site.sources", files[1]!.content],
                [
                    "etc/apt/sources.list.d/debian.sources",
                    "Types: deb\nURIs: http://a/debian\nSuites: s\nComponents: main\nEnabled: no\n",
                ],
            ],
        );
        assert.deepEqual(derivedPaths(spec), ["etc/apt/sources.list"]);
    });
});

describe("pip.conf", () => {
    it("renders [global] index-url and trusted-host", () => {
        assert.equal(
            renderPipConf("site", { indexUrl: "http://m.local/pypi/simple/", trustedHost: "m.local" }),
            `${HEADER}[global]\nindex-url = http://m.local/pypi/simple/\ntrusted-host = m.local\n`,
        );
        assert.deepEqual(
            renderHostFiles({ ...base, pip: { indexUrl: "https://m/simple/" } }).map((f) => f.path),
            ["etc/pip.conf"],
        );
    });
});

describe("validation of the format options", () => {
    const problemsOf = async (spec: Partial<HostMirrorSpec>) =>
        (await validateHostMirrorSpec({ ...base, ...spec } as HostMirrorSpec)).map(
            (p) => `${p.argument}: ${p.problem}`,
        );

    it("accepts every format at once", async () => {
        assert.deepEqual(
            await problemsOf({
                registries: [{ source: "docker.io", mirrors: ["m:5000"] }],
                containerd: { defaultMirror: ["m:5000/all"], insecure: true },
                docker: true,
                caTrust: "rhel",
                aptDisableOtherSources: true,
                pip: { indexUrl: "http://m/simple/", trustedHost: "m:8080" },
            }),
            [],
        );
    });

    it("names each bad argument", async () => {
        const problems = await problemsOf({
            registries: [
                { source: "registry.example/ns", mirrors: ["m:5000"] },
                { source: "quay.io", mirrors: ["m:5000/a"] },
                { source: "quay.io", mirrors: ["m:5000/b"] },
                { source: "docker.io", mirrors: ["m:5000/hub"] },
            ],
            containerd: { defaultMirror: ["http://m:5000"] },
            docker: true,
            caTrust: "suse" as "rhel",
            aptDisableOtherSources: "yes" as unknown as boolean,
            pip: { indexUrl: "ftp://m/simple", trustedHost: "http://m" },
        });
        const args = problems.map((p) => p.split(":")[0]);
        assert.deepEqual(args, [
            "caTrust",
            "containerd.defaultMirror[0]",
            "registries[0].source",
            "registries[2].source",
            "registries[3].mirrors[0]",
            "aptDisableOtherSources",
            "pip.indexUrl",
            "pip.trustedHost",
        ]);
        assert.match(problems[2]!, /not a whole registry/);
        assert.match(problems[4]!, /Docker's registry-mirrors/);
    });
});
