import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { digestOf } from "../../provider/oci/digest";
import type { AptMirrorArgs, HostMirrorConfigArgs, ImageMirrorArgs } from "../../sdk";
import { type AptRepo, buildRepo } from "../harness/fixtures/aptrepo";
import { cliEnv, createProgramStack, type ProgramStack } from "../harness/program";
import { run } from "../harness/servers/process";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

/** A site's program: an APT mirror, an image mirror and a host pointed at them. */
const siteProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs, HostMirrorConfig, type HostMirrorConfigArgs, ImageMirror, type ImageMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const apt = new AptMirror("debian", config.requireObject<AptMirrorArgs>("apt"));
const images = new ImageMirror("release", config.requireObject<ImageMirrorArgs>("images"));
const host = new HostMirrorConfig("node", config.requireObject<HostMirrorConfigArgs>("host"));
export const packages = apt.packages;
export const digests = images.images;
export const files = host.files;
`;

/**
 * Recorded JSON of the CLI for the unit tests of the summary (RECORD_DRIFT_JSON=<dir>), without
 * the serialized provider code.
 */
function record(name: string, stdout: string): void {
    const dir = process.env.RECORD_DRIFT_JSON;
    if (!dir) {
        return;
    }
    const json = JSON.parse(stdout.slice(stdout.indexOf("{")));
    const stripped = JSON.stringify(
        json,
        (k, v) => (k === "__provider" || k === "stackTrace" || k === "sourcePosition" ? undefined : v),
        4,
    );
    fs.writeFileSync(path.join(dir, `${name}.json`), `${stripped}\n`);
}

describe("pulumi-airgap drift with the real CLI on a site's program", function () {
    this.timeout(600_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer | undefined;
    let registry: RegistryServer;
    let mirror: RegistryServer;
    let root: string;
    let hostRoot: string;
    let t: ProgramStack;
    let app: string;

    /** `npx pulumi-airgap drift` from the program directory, as a pipeline runs it. */
    const drift = async () => {
        const r = await run("npx", ["--no-install", "pulumi-airgap", "drift", "--stack", "test"], {
            cwd: t.dir,
            env: cliEnv(t.stateDir),
            check: false,
            timeoutMs: 300_000,
        });
        return { code: r.code, out: r.stdout + r.stderr };
    };
    /** The raw JSON, for the recordings. */
    const raw = async (name: string) => {
        if (process.env.RECORD_DRIFT_JSON) {
            const r = await t.cli(["preview", "--refresh", "--expect-no-changes", "--json", "--non-interactive"]);
            record(name, r.stdout);
        }
    };

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            signWith: "ed25519",
            components: { main: [{ name: "app", version: "1.0-1" }] },
        });
        upstreamServer = await startStaticServer(upstream.dir);
        [registry, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${registry.host}/src/app:v1`;
        await skopeo(["copy", "--dest-tls-verify=false", await singleLayout("v1", 2000, 7), `docker://${app}`]);
        root = await makeTempDir("drift-mirror");
        hostRoot = await makeTempDir("drift-host");
        const apt: AptMirrorArgs = {
            source: { url: upstreamServer.url, distribution: "bookworm", key: upstream.publicKeyArmored },
            packages: ["app"],
            publish: { root, prefix: "debian" },
            allowUnsigned: true,
        };
        const images: ImageMirrorArgs = {
            images: [app],
            destination: `docker://${mirror.host}`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [registry.host, mirror.host] },
        };
        const host: HostMirrorConfigArgs = {
            target: { local: { root: hostRoot } },
            registries: [{ source: registry.host, mirrors: [mirror.host] }],
        };
        t = await createProgramStack("drift", {
            source: siteProgram,
            config: () => ({
                apt: JSON.stringify(apt),
                images: JSON.stringify(images),
                host: JSON.stringify(host),
            }),
        });
        await t.up();
    });

    after(async () => {
        await t?.dispose();
        await upstreamServer?.close();
        await Promise.all([registry?.stop(), mirror?.stop()]);
        await upstream?.close();
        await cleanupAll();
    });

    it("a clean stack: exit 0, no drift", async () => {
        const started = Date.now();
        const r = await drift();
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /^no drift \(stack test\)$/m);
        await raw("clean");
        console.log(`      drift check of a clean stack: ${Date.now() - started} ms`);
    });

    it("a host file edited: exit 1 naming the file, as the site drifting", async () => {
        const file = path.join(hostRoot, "etc/containers/registries.conf.d/node.conf");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(mirror.host, "evil.example:5000"));
        const r = await drift();
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^HostMirrorConfig "node": site drifted/m);
        assert.match(r.out, /host file etc\/containers\/registries\.conf\.d\/node\.conf edited/);
        assert.doesNotMatch(r.out, /AptMirror|ImageMirror/);
        await raw("host-file-edited");
        // up restores what a refresh found changed.
        await t.refresh();
        await t.up();
        assert.equal((await drift()).code, 0);
    });

    it("upstream gained a version: exit 1 naming the package and both versions, as upstream moving", async () => {
        await upstream.addDebs("main", [{ name: "app", version: "1.1-1" }]);
        const r = await drift();
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^AptMirror "debian": upstream moved \(update\)$/m);
        assert.match(r.out, /^ {2}package app\/amd64 1\.0-1 → 1\.1-1$/m);
        assert.match(r.out, /^ {2}upstream Release date \S+ → \S+$/m);
        assert.doesNotMatch(r.out, /HostMirrorConfig|ImageMirror/);
        await raw("upstream-version");
        await t.up();
    });

    it("a tag moved: exit 1 naming the image and both digests", async () => {
        const before = digestOf(await skopeoRaw(`docker://${app}`));
        await skopeo(["copy", "--dest-tls-verify=false", await singleLayout("v1", 2000, 8), `docker://${app}`]);
        const after = digestOf(await skopeoRaw(`docker://${app}`));
        assert.notEqual(before, after);
        const r = await drift();
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^ImageMirror "release": upstream moved \(update\)$/m);
        assert.ok(r.out.includes(`  image ${app} ${before} → ${after}\n`), r.out);
        await raw("tag-moved");
        await t.up();
    });

    it("a mirror file altered: exit 1 naming the file, as the site drifting", async () => {
        const deb = path.join(root, "debian", "pool", "main", "a", "app", "app_1.1-1_amd64.deb");
        assert.ok(fs.existsSync(deb));
        fs.writeFileSync(deb, "not a package");
        const r = await drift();
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^AptMirror "debian": site drifted/m);
        assert.match(r.out, /^ {2}altered-pool-file: pool\/main\/a\/app\/app_1\.1-1_amd64\.deb: /m);
        await raw("mirror-file-altered");
        await t.refresh();
        await t.up();
        assert.equal((await drift()).code, 0);
    });

    it("upstream unreachable: exit 2 with the reason, not drift", async () => {
        await upstreamServer?.close();
        upstreamServer = undefined;
        const r = await drift();
        assert.equal(r.code, 2, r.out);
        assert.match(r.out, /^error \(stack test\): the preview failed; this is not drift$/m);
        assert.match(
            r.out,
            /^ {2}AptMirror "debian": source: GET http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm\/InRelease: .*ECONNREFUSED/m,
        );
        assert.doesNotMatch(r.out, /^drift/m);
        await raw("upstream-unreachable");
    });
});
