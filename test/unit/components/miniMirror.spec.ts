import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { inputsDigest } from "../../../sdk/lock";
import {
    MINI_MIRROR_NGINX_CONF,
    MiniMirror,
    type MiniMirrorArgs,
    miniMirrorLockFile,
    miniMirrorNginxConf,
} from "../../../sdk/components/miniMirror";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { installMocks, type Recorder, urnOf } from "./mocks";

/**
 * MiniMirror under Pulumi's mocks: the children a mini-mirror `sources/` tree (or its YAML
 * form) declares, each with the inputs the engine would receive: one AptMirror per suite under
 * its prefix, the nginx image and container serving the publish root (image, command, the
 * configuration uploaded, port, volume, network, restart, dependencies), the MirrorVM; and bad
 * inputs refused before anything is declared, naming the file and line or the argument.
 */

const SIGNING = { privateKey: "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n" };
const UP = "http://127.0.0.1:9";

/** Lock files so that no upstream is asked: `packages` of each suite, resolved "earlier". */
function pin(
    lockDir: string,
    suites: { prefix: string; url: string; distribution: string; components: string[]; queries: string[] }[],
) {
    for (const s of suites) {
        const packages = Object.fromEntries(s.queries.map((q) => [`${q.split(" ")[0]}/amd64`, "1.0-1"]));
        const inputs = inputsDigest({
            url: s.url,
            distribution: s.distribution,
            components: s.components,
            architectures: ["amd64"],
            queries: s.queries,
            withDeps: true,
            followRecommends: false,
        });
        fs.writeFileSync(
            miniMirrorLockFile(lockDir, s),
            `${JSON.stringify({ version: 1, inputs, source: { url: s.url, distribution: s.distribution }, packages }, null, 2)}\n`,
        );
    }
}

describe("MiniMirror component (mocks)", () => {
    let mocks: Recorder;
    let work: string;
    let root: string;
    let lockDir: string;
    let sources: string;

    const write = (rel: string, text: string) => {
        const file = path.join(sources, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
    };

    before(async () => {
        mocks = await installMocks((type, inputs) =>
            type === "docker:index/remoteImage:RemoteImage"
                ? { imageId: `sha256:${"ab".repeat(32)}`, repoDigest: `${inputs.name}@sha256:${"cd".repeat(32)}` }
                : {},
        );
    });

    beforeEach(async () => {
        work = await makeTempDir("mm-unit");
        root = path.join(work, "srv");
        lockDir = path.join(work, "locks");
        sources = path.join(work, "sources");
        for (const d of [root, lockDir, sources]) fs.mkdirSync(d);
    });

    after(cleanupAll);

    /** A tree with two suites under `debian` (several components) and one under `ceph`. */
    function tree(): void {
        write("debian/bookworm/source.txt", `${UP}/debian file:///keys/debian.asc bookworm main contrib\n`);
        write("debian/bookworm/packages.txt", "# OpenStack nodes\nchrony\njq (>= 1.6)\n");
        write("debian/updates/source.txt", `${UP}/debian file:///keys/debian.asc bookworm-updates main\n`);
        write("debian/updates/packages.txt", "openssl\n");
        write("ceph/reef/source.txt", `${UP}/ceph https://download.example/ceph.asc bookworm main\n`);
        write("ceph/reef/packages.txt", "ceph-common (>= 18)\n");
        pin(lockDir, [
            {
                prefix: "debian",
                url: `${UP}/debian`,
                distribution: "bookworm",
                components: ["main", "contrib"],
                queries: ["chrony", "jq (>= 1.6)"],
            },
            {
                prefix: "debian",
                url: `${UP}/debian`,
                distribution: "bookworm-updates",
                components: ["main"],
                queries: ["openssl"],
            },
            {
                prefix: "ceph",
                url: `${UP}/ceph`,
                distribution: "bookworm",
                components: ["main"],
                queries: ["ceph-common (>= 18)"],
            },
        ]);
    }

    const declare = (name: string, extra: Partial<MiniMirrorArgs> = {}) =>
        new MiniMirror(name, { sourcesDir: sources, publishRoot: root, signing: SIGNING, lockDir, ...extra });

    it("a sources/ tree: one signed AptMirror per suite under its prefix, with the tree's URL, key URL, components and queries", async () => {
        tree();
        const mm = declare("site");
        await mocks.settle([mm, ...mm.mirrors, mm.container!]);
        assert.deepEqual(
            mm.suites.map((s) => [s.resourceName, s.prefix, s.distribution]),
            [
                ["site-ceph-reef", "ceph", "bookworm"],
                ["site-debian-bookworm", "debian", "bookworm"],
                ["site-debian-updates", "debian", "bookworm-updates"],
            ],
        );
        const mirrors = mocks
            .byType("pulumi-nodejs:dynamic/airgap:AptMirror")
            .filter((r) => r.name.startsWith("site-"));
        assert.equal(mirrors.length, 3);
        const bookworm = mocks.get("site-debian-bookworm");
        assert.deepEqual(bookworm.inputs.source, {
            url: `${UP}/debian`,
            distribution: "bookworm",
            components: ["main", "contrib"],
            architectures: ["amd64"],
            keyUrl: "file:///keys/debian.asc",
        });
        // The lock as the provider receives it: a `name/arch version` line each.
        assert.equal(bookworm.inputs.packages, "chrony/amd64 1.0-1\njq/amd64 1.0-1\n");
        assert.deepEqual(bookworm.inputs.publish, { root, prefix: "debian" });
        // The signing key reaches the mirror as a secret.
        assert.equal(bookworm.inputs.signing["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270");
        assert.deepEqual(bookworm.inputs.signing.value, SIGNING);
        assert.equal(bookworm.inputs.allowUnsigned, false);
        const updates = mocks.get("site-debian-updates");
        assert.equal(updates.inputs.source.distribution, "bookworm-updates");
        assert.deepEqual(updates.inputs.publish, { root, prefix: "debian" }, "both suites of debian share its prefix");
        const ceph = mocks.get("site-ceph-reef");
        assert.equal(ceph.inputs.source.keyUrl, "https://download.example/ceph.asc");
        assert.deepEqual(ceph.inputs.publish, { root, prefix: "ceph" });
        // Children of the component.
        const parent = await urnOf(mm);
        for (const m of mirrors) assert.equal(m.parent, parent, m.name);
        assert.deepEqual(mm.aptLines, [
            "deb http://{host}:8888/ceph bookworm main",
            "deb http://{host}:8888/debian bookworm main contrib",
            "deb http://{host}:8888/debian bookworm-updates main",
        ]);
    });

    it("the nginx container: the pulled image, serving the publish root read-only at /srv, host port 8888 → 80, after the mirrors", async () => {
        tree();
        const mm = declare("mirror");
        await mocks.settle([mm, ...mm.mirrors, mm.container!, mm.image!]);
        const parent = await urnOf(mm);
        const image = mocks.get("mirror-image");
        assert.equal(image.type, "docker:index/remoteImage:RemoteImage");
        assert.deepEqual(image.inputs, { name: "docker.io/library/nginx:1.27", keepLocally: true });
        assert.equal(image.parent, parent);

        const c = mocks.get("mirror-nginx");
        assert.equal(c.type, "docker:index/container:Container");
        assert.equal(c.parent, parent);
        assert.equal(c.inputs.name, "mirror");
        assert.equal(c.inputs.image, `sha256:${"ab".repeat(32)}`, "the container runs the pulled image");
        assert.deepEqual(c.inputs.command, ["nginx", "-c", MINI_MIRROR_NGINX_CONF, "-g", "daemon off;"]);
        assert.deepEqual(c.inputs.uploads, [{ file: MINI_MIRROR_NGINX_CONF, content: miniMirrorNginxConf(80) }]);
        assert.match(c.inputs.uploads[0].content, /^\s+listen 80;$/m);
        assert.match(c.inputs.uploads[0].content, /^\s+root \/srv;$/m);
        assert.deepEqual(c.inputs.volumes, [{ hostPath: root, containerPath: "/srv", readOnly: true }]);
        assert.deepEqual(c.inputs.ports, [{ internal: 80, external: 8888, ip: "0.0.0.0", protocol: "tcp" }]);
        assert.equal(c.inputs.networkMode, "bridge");
        assert.equal(c.inputs.restart, "unless-stopped");
        assert.equal(c.inputs.envs, undefined, "no environment: the configuration is uploaded");
        assert.deepEqual(c.inputs.labels, [{ label: "airgap.mini-mirror", value: "mirror" }]);
        // It starts once every suite is published, and after the image is pulled.
        const mirrorUrns = await Promise.all(mm.mirrors.map(urnOf));
        for (const urn of mirrorUrns) assert.ok(c.dependencies.includes(urn), `${urn} not in ${c.dependencies}`);
        assert.ok(c.dependencies.includes(await urnOf(mm.image!)));
        assert.equal(mm.vm, undefined);
    });

    it("container options: a local image by name (no pull), another port and address, host networking listens on the port itself", async () => {
        tree();
        const bridge = declare("a", {
            container: { image: "site/nginx:local", pullImage: false, port: 9080, ip: "127.0.0.1", name: "apt" },
        });
        await mocks.settle([bridge.container!]);
        assert.equal(bridge.image, undefined);
        assert.equal(
            mocks.byType("docker:index/remoteImage:RemoteImage").filter((r) => r.name === "a-image").length,
            0,
        );
        const a = mocks.get("a-nginx").inputs;
        assert.equal(a.image, "site/nginx:local");
        assert.equal(a.name, "apt");
        assert.deepEqual(a.ports, [{ internal: 80, external: 9080, ip: "127.0.0.1", protocol: "tcp" }]);

        const root2 = path.join(work, "srv2");
        fs.mkdirSync(root2);
        const host = new MiniMirror("b", {
            sourcesDir: sources,
            publishRoot: root2,
            signing: SIGNING,
            lockDir,
            container: { pullImage: false, image: "x", networkMode: "host", port: 18080 },
        });
        await mocks.settle([host.container!]);
        const b = mocks.get("b-nginx").inputs;
        assert.equal(b.networkMode, "host");
        assert.equal(b.ports, undefined);
        assert.match(b.uploads[0].content, /^\s+listen 18080;$/m);
        assert.deepEqual(b.volumes, [{ hostPath: root2, containerPath: "/srv", readOnly: true }]);
    });

    it("serve: false declares no image and no container; vm declares a MirrorVM of every suite", async () => {
        tree();
        const output = path.join(work, "mirror.qcow2");
        const mm = declare("vmonly", { serve: false, vm: { output, baseImage: "/images/debian.qcow2" } });
        await mocks.settle([mm, mm.vm!, ...mm.mirrors]);
        assert.equal(mm.container, undefined);
        assert.equal(mocks.all.filter((r) => r.name.startsWith("vmonly-") && r.type.startsWith("docker:")).length, 0);
        const vm = mocks.get("vmonly-vm");
        assert.equal(vm.type, "pulumi-nodejs:dynamic/airgap:MirrorVM");
        assert.equal(vm.parent, await urnOf(mm));
        assert.equal(vm.inputs.output, output);
        assert.equal(vm.inputs.baseImage, "/images/debian.qcow2");
        assert.deepEqual(
            vm.inputs.apt.map((a: { prefix: string; distribution: string; root: string }) => [
                a.root,
                a.prefix,
                a.distribution,
            ]),
            [
                [root, "ceph", "bookworm"],
                [root, "debian", "bookworm"],
                [root, "debian", "bookworm-updates"],
            ],
        );
        const mirrorUrns = await Promise.all(mm.mirrors.map(urnOf));
        for (const urn of mirrorUrns) assert.ok(vm.dependencies.includes(urn), urn);
    });

    it("the YAML form: several subrepos[].distribution under one prefix, versions pinned with =", async () => {
        const file = path.join(work, "mini-mirror.yaml");
        fs.writeFileSync(
            file,
            [
                "- name: ubuntu",
                `  url: ${UP}/ubuntu`,
                "  key_url: file:///keys/ubuntu.asc",
                "  components: [main, universe]",
                "  subrepos:",
                "    - distribution: jammy",
                "      packages:",
                "        - name: ceph-common",
                "          version: 17.2.6-0ubuntu0.22.04.1",
                "        - name: jq",
                "    - distribution: jammy-updates",
                "      packages: [curl]",
                "",
            ].join("\n"),
        );
        pin(lockDir, [
            {
                prefix: "ubuntu",
                url: `${UP}/ubuntu`,
                distribution: "jammy",
                components: ["main", "universe"],
                queries: ["ceph-common (= 17.2.6-0ubuntu0.22.04.1)", "jq"],
            },
            {
                prefix: "ubuntu",
                url: `${UP}/ubuntu`,
                distribution: "jammy-updates",
                components: ["main", "universe"],
                queries: ["curl"],
            },
        ]);
        const mm = new MiniMirror("y", {
            sourcesYaml: file,
            publishRoot: root,
            signing: SIGNING,
            lockDir,
            serve: false,
        });
        await mocks.settle(mm.mirrors);
        const jammy = mocks.get("y-ubuntu-jammy");
        assert.deepEqual(jammy.inputs.source, {
            url: `${UP}/ubuntu`,
            distribution: "jammy",
            components: ["main", "universe"],
            architectures: ["amd64"],
            keyUrl: "file:///keys/ubuntu.asc",
        });
        assert.equal(jammy.inputs.packages, "ceph-common/amd64 1.0-1\njq/amd64 1.0-1\n");
        assert.deepEqual(jammy.inputs.publish, { root, prefix: "ubuntu" });
        const updates = mocks.get("y-ubuntu-jammy-updates");
        assert.deepEqual(updates.inputs.publish, { root, prefix: "ubuntu" });
        assert.equal(updates.inputs.source.distribution, "jammy-updates");
    });

    describe("bad inputs: an error naming the file and line or the argument, nothing declared", () => {
        /** Declares, expects `pattern`, and checks no child resource of `name` was registered. */
        const refused = async (name: string, args: Partial<MiniMirrorArgs>, pattern: RegExp) => {
            const before = mocks.all.length;
            assert.throws(
                () => new MiniMirror(name, { publishRoot: root, signing: SIGNING, lockDir, ...args } as MiniMirrorArgs),
                (err: Error) => {
                    assert.match(err.message, pattern);
                    assert.match(err.message, new RegExp(`^MiniMirror "${name}": `));
                    return true;
                },
            );
            await new Promise((r) => setTimeout(r, 50));
            const children = mocks.all.slice(before).filter((r) => r.type !== "airgap:components:MiniMirror");
            assert.deepEqual(
                children.map((r) => r.name),
                [],
            );
        };

        it("a source.txt with missing fields", async () => {
            tree();
            write("ceph/reef/source.txt", "# ceph\nhttp://a/ceph https://a/key.asc\n");
            const file = path.join(sources, "ceph/reef/source.txt");
            await refused(
                "bad1",
                { sourcesDir: sources },
                new RegExp(`${file}:2: expected "source_url source_key_url dist components"`),
            );
        });

        it("a packages.txt line that does not parse", async () => {
            tree();
            write("debian/updates/packages.txt", "openssl\n\njq (>= 1.6\n");
            const file = path.join(sources, "debian/updates/packages.txt");
            await refused(
                "bad2",
                { sourcesDir: sources },
                new RegExp(`${file}:3: "jq \\(>= 1\\.6" is not a package query`),
            );
        });

        it("a YAML source without url", async () => {
            const file = path.join(work, "bad.yaml");
            fs.writeFileSync(
                file,
                [
                    `- name: debian`,
                    `  url: ${UP}/debian`,
                    "  subrepos: [{distribution: bookworm, packages: [jq]}]",
                    "- name: ubuntu",
                    "  subrepos:",
                    "    - distribution: jammy",
                    "      packages: [jq]",
                    "",
                ].join("\n"),
            );
            await refused(
                "bad3",
                { sourcesYaml: file },
                new RegExp(`${file}:4: entry 2: "url" must be a non-empty string`),
            );
        });

        it("a YAML subrepo without distribution names its line", async () => {
            const file = path.join(work, "bad2.yaml");
            fs.writeFileSync(
                file,
                [
                    `name: debian`,
                    `url: ${UP}/debian`,
                    "subrepos:",
                    "  - distribution: bookworm",
                    "    packages: [jq]",
                    "  - packages: [curl]",
                    "",
                ].join("\n"),
            );
            await refused(
                "bad4",
                { sourcesYaml: file },
                new RegExp(`${file}:6: entry 1: subrepos\\[1\\]\\.distribution must be`),
            );
        });

        it("neither or both of sourcesDir and sourcesYaml", async () => {
            await refused("bad5", {}, /sourcesDir: give exactly one of sourcesDir/);
            tree();
            await refused("bad6", { sourcesDir: sources, sourcesYaml: "x.yaml" }, /not both/);
        });

        it("two sources of one prefix publishing the same distribution, naming both", async () => {
            tree();
            write("debian/again/source.txt", `${UP}/debian file:///keys/debian.asc bookworm main\n`);
            write("debian/again/packages.txt", "curl\n");
            await refused(
                "bad7",
                { sourcesDir: sources },
                /debian\/bookworm publishes debian\/dists\/bookworm, as debian\/again .* does/,
            );
        });

        it("two components claiming the same publish prefix, naming both", async () => {
            tree();
            const first = declare("first", { serve: false });
            await mocks.settle(first.mirrors);
            await refused(
                "second",
                { sourcesDir: sources, serve: false },
                new RegExp(
                    `MiniMirror "second": publishRoot: ${fs.realpathSync(root)}/ceph is also written by MiniMirror "first"`,
                ),
            );
        });

        it("a port that is not a port", async () => {
            tree();
            await refused(
                "bad8",
                { sourcesDir: sources, container: { port: 70000 } },
                /container\.port: 70000 is not a port number/,
            );
        });
    });
});
