import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeAptClient } from "../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import { createProgramStack, packageRoot, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll, makeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";
import { multiArchLayout, singleLayout, skopeo } from "../integration/oci/registry_helpers";

/**
 * examples/site as a site runs it: its Pulumi.yaml and index.ts in a program directory of a
 * deployment repository, every location given as stack configuration, run with the real CLI
 * against the site in miniature on 127.0.0.1: an upstream APT archive, a source registry that
 * needs the pull secret, a MicroShift release file naming images there, a transfer directory
 * for the archive, the site registry, the directory the APT mirror is served from, and a host
 * root. Judges are the real clients: apt-get configured from the files written on the host,
 * and skopeo against the registries.
 */

const example = path.join(packageRoot, "examples", "site");
/** The project name in the example's Pulumi.yaml: the stack is created under it. */
const PROJECT = "site-mirrors";

const UPSTREAM = [
    { name: "chrony", version: "4.3-2", depends: "libcap2 (>= 1:2.10)" },
    { name: "libcap2", version: "1:2.66-4" },
    { name: "jq", version: "1.5+dfsg-2", depends: "libjq1 (= 1.5+dfsg-2)" },
    { name: "jq", version: "1.6-2.1", depends: "libjq1 (= 1.6-2.1)" },
    { name: "libjq1", version: "1.5+dfsg-2" },
    { name: "libjq1", version: "1.6-2.1" },
    { name: "python3-openstackclient", version: "6.0.0-4" },
];
const QUERIES = ["chrony", "jq (>= 1.6)"];
const MIRRORED = {
    "chrony/amd64": "4.3-2",
    "jq/amd64": "1.6-2.1",
    "libcap2/amd64": "1:2.66-4",
    "libjq1/amd64": "1.6-2.1",
};
const PULLER = { username: "site-puller", password: "pull secret" };

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

/** The digest of the manifest or index skopeo reads at `ref`, hashed here from its bytes. */
async function digestAt(ref: string, extra: string[] = []): Promise<string> {
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", ...extra, ref]);
    return `sha256:${sha256(raw.stdoutBytes)}`;
}

/** The fields of a one-stanza deb822 file. */
function deb822(text: string): Record<string, string> {
    const fields: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) fields[m[1]!] = m[2]!;
    }
    return fields;
}

describe("examples/site with the real Pulumi CLI, against the site in miniature", function () {
    this.timeout(900_000);

    let upstream: AptRepo;
    let upstreamServer: StaticServer;
    let signing: GpgKeyring;
    let source: RegistryServer;
    let siteRegistry: RegistryServer;
    let mirrorRoot: string;
    let mirrorServer: StaticServer;
    let transferDir: string;
    let hostRoot: string;
    let hostBefore: Record<string, string>;
    let t: ProgramStack;
    /** Release component → reference as the release file names it, and its digest at the source. */
    const release: Record<string, { ref: string; digest: string; atSite: string }> = {};

    const archive = () => path.join(transferDir, "microshift-images.tar");

    before(async () => {
        upstream = await buildRepo({ distribution: "bookworm", signWith: "ed25519", components: { main: UPSTREAM } });
        upstreamServer = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        [source, siteRegistry] = await Promise.all([startRegistry({ auth: PULLER }), startRegistry()]);

        // A binary keyring, like /usr/share/keyrings/debian-archive-keyring.gpg.
        const keys = await makeTempDir("site-keys");
        const keyring = path.join(keys, "debian-archive-keyring.gpg");
        fs.writeFileSync(keyring, (await upstream.keyring!.gpg(["--export", ...upstream.fingerprints])).stdoutBytes);

        // The release's images at the source registry: one by tag, one (multi-platform) by digest,
        // as MicroShift's release files name them.
        const push = async (from: string, to: string) =>
            skopeo([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                "--dest-creds",
                `${PULLER.username}:${PULLER.password}`,
                from,
                `docker://${to}`,
            ]);
        const creds = ["--creds", `${PULLER.username}:${PULLER.password}`];
        const ovn = `${source.host}/openshift-release-dev/ovn-kubernetes-microshift:4.18.1`;
        await push(await singleLayout("v1", 3000, 31), ovn);
        release["ovn-kubernetes-microshift"] = {
            ref: ovn,
            digest: await digestAt(`docker://${ovn}`, creds),
            atSite: `${siteRegistry.host}/openshift-release-dev/ovn-kubernetes-microshift:4.18.1`,
        };
        const podTag = `${source.host}/openshift-release-dev/ocp-v4.0-art-dev:pod`;
        await push((await multiArchLayout("pod", "pod")).reference, podTag);
        const podDigest = await digestAt(`docker://${podTag}`, creds);
        release.pod = {
            ref: `${source.host}/openshift-release-dev/ocp-v4.0-art-dev@${podDigest}`,
            digest: podDigest,
            atSite: `${siteRegistry.host}/openshift-release-dev/ocp-v4.0-art-dev@${podDigest}`,
        };
        const releaseDir = await makeTempDir("site-release");
        const releaseFile = path.join(releaseDir, "release-x86_64.json");
        fs.writeFileSync(
            releaseFile,
            `${JSON.stringify(
                {
                    release: { base: "4.18.1" },
                    images: Object.fromEntries(Object.entries(release).map(([name, image]) => [name, image.ref])),
                },
                null,
                2,
            )}\n`,
        );

        mirrorRoot = await makeTempDir("site-srv-mirror");
        mirrorServer = await startStaticServer(mirrorRoot);
        transferDir = await makeTempDir("site-transfer");
        hostRoot = await makeTempDir("site-host");
        // A host that already has configuration of its own.
        fs.mkdirSync(path.join(hostRoot, "etc/apt/sources.list.d"), { recursive: true });
        fs.writeFileSync(
            path.join(hostRoot, "etc/apt/sources.list"),
            "deb http://archive.example/debian bookworm main\n",
        );
        fs.mkdirSync(path.join(hostRoot, "etc/containers/registries.conf.d"), { recursive: true });
        fs.writeFileSync(
            path.join(hostRoot, "etc/containers/registries.conf"),
            'unqualified-search-registries = ["quay.io"]\n',
        );
        fs.writeFileSync(
            path.join(hostRoot, "etc/containers/registries.conf.d/000-shortnames.conf"),
            '[aliases]\n"fedora" = "registry.fedoraproject.org/fedora"\n',
        );
        hostBefore = snapshotTree(hostRoot, { identity: true });

        const pullSecret = JSON.stringify({
            auths: {
                [source.host]: { auth: Buffer.from(`${PULLER.username}:${PULLER.password}`).toString("base64") },
            },
        });
        t = await createProgramStack(PROJECT, {
            source: fs.readFileSync(path.join(example, "index.ts"), "utf8"),
            config: () => ({
                debianUrl: upstreamServer.url,
                debianKeyring: keyring,
                debianPackages: JSON.stringify(QUERIES),
                mirrorRoot,
                mirrorUrl: mirrorServer.url,
                siteRegistry: siteRegistry.host,
                releaseFile,
                transferDir,
                hostRoot,
                insecureRegistries: JSON.stringify([source.host, siteRegistry.host]),
                mirrorSigningKey: { secret: signing.keys[0]!.privateKeyArmored },
                pullSecret: { secret: pullSecret },
            }),
        });
        // The example's own project file, in place of the generated one (same project name).
        fs.copyFileSync(path.join(example, "Pulumi.yaml"), path.join(t.dir, "Pulumi.yaml"));
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([upstreamServer?.close(), mirrorServer?.close(), source?.stop(), siteRegistry?.stop()]);
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("the first pulumi preview, before anything exists, shows every resource to create and writes nothing", async () => {
        const r = await t.preview();
        const creates = r.steps
            .filter((s) => s.op === "create" && !s.type.startsWith("pulumi:providers:"))
            .map((s) => s.urn.split("::").pop())
            .sort();
        assert.deepEqual(
            creates,
            ["debian", "microshift", "microshift-archive", "node", `${PROJECT}-test`],
            t.lastOutput(),
        );
        // The archive is not written yet: the second mirror's lock is known only at the update.
        assert.match(t.lastOutput(), /ImageMirror::microshift\]\n(?:.*\n)*?\s+images\s*: \[unknown\]/);
        assert.deepEqual(fs.readdirSync(transferDir), []);
        assert.deepEqual(snapshotTree(hostRoot, { identity: true }), hostBefore);
    });

    it("pulumi up mirrors the packages, carries the release through the archive to the site registry and points the host at both", async () => {
        const r = await t.up();
        const created = r.steps
            .filter((s) => s.op === "create" && !s.type.startsWith("pulumi:providers:"))
            .map((s) => s.urn.slice(s.urn.lastIndexOf("::") + 2))
            .sort();
        assert.deepEqual(
            created,
            ["debian", "microshift", "microshift-archive", "node", `${PROJECT}-test`],
            t.lastOutput(),
        );

        // Outputs.
        assert.deepEqual(r.outputs.packages, MIRRORED);
        assert.deepEqual(
            r.outputs.images,
            Object.fromEntries(Object.values(release).map((image) => [image.ref, image.digest])),
        );
        const hostFiles = r.outputs.hostFiles as Record<string, string>;
        assert.deepEqual(Object.keys(hostFiles).sort(), [
            "etc/apt/keyrings/site-debian.asc",
            "etc/apt/sources.list.d/site-debian.sources",
            "etc/containers/registries.conf.d/node.conf",
        ]);
        for (const [file, digest] of Object.entries(hostFiles)) {
            assert.equal(sha256(fs.readFileSync(path.join(hostRoot, file))), digest, file);
        }
        assert.match(
            r.outputs.imageDigestMirrorSet as string,
            new RegExp(`- source: ${source.host}\\n\\s+mirrors:\\n\\s+- ${siteRegistry.host}\\n`),
        );

        // apt-get, configured only from what the host was given, installs the packages with
        // signature checking against the key the host was given.
        const sources = deb822(
            fs.readFileSync(path.join(hostRoot, "etc/apt/sources.list.d/site-debian.sources"), "utf8"),
        );
        assert.equal(sources.URIs, `${mirrorServer.url}/debian`);
        const hostKey = path.join(hostRoot, sources["Signed-By"]!);
        const shown = await signing.gpg(["--show-keys", "--with-colons", hostKey]);
        assert.match(shown.stdout, new RegExp(`^fpr:+${signing.keys[0]!.fingerprint}:`, "m"));
        const client = await makeAptClient({
            sources: [
                {
                    uri: sources.URIs!,
                    suites: sources.Suites!.split(" "),
                    components: sources.Components!.split(" "),
                    signedBy: hostKey,
                },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, update.stdout + update.stderr);
            const install = await client.installDownloadOnly(["chrony", "jq"]);
            assert.ok(install.ok, install.stdout + install.stderr);
            assert.deepEqual(install.files, [
                "chrony_4.3-2_amd64.deb",
                "jq_1.6-2.1_amd64.deb",
                // apt-get keeps the epoch in the archive's name, escaped.
                "libcap2_1%3a2.66-4_amd64.deb",
                "libjq1_1.6-2.1_amd64.deb",
            ]);
            const other = await client.run("apt-get", ["install", "--download-only", "-y", "python3-openstackclient"]);
            assert.ok(!other.ok, "a package the site did not ask for is in the mirror");
        } finally {
            await client.close();
        }

        // The archive in the transfer directory holds the release; the site registry serves
        // each image with its source digest, under the source's path without its registry.
        assert.ok(fs.statSync(archive()).size > 3000);
        for (const image of Object.values(release)) {
            assert.equal(await digestAt(`docker://${image.atSite}`), image.digest, image.atSite);
        }

        // The host's registries drop-in sends pulls from the source registry to the site registry.
        const conf = fs.readFileSync(path.join(hostRoot, "etc/containers/registries.conf.d/node.conf"), "utf8");
        assert.match(conf, new RegExp(`^location = "${source.host}"$`, "m"), conf);
        assert.match(
            conf,
            new RegExp(`\\[\\[registry\\.mirror\\]\\]\\nlocation = "${siteRegistry.host}"\\ninsecure = true\\n`),
            conf,
        );
        assert.match(conf, /^mirror-by-digest-only = true$/m, conf);
    });

    it("pulumi preview --expect-no-changes passes", async () => {
        const r = await t.preview({ expectNoChanges: true });
        assert.deepEqual(r.changes, { same: 5 }, t.lastOutput());
    });

    it("pulumi refresh finds everything as it was left, and a preview after it still has no change", async () => {
        const outputs = await t.outputs();
        const r = await t.refresh();
        assert.deepEqual(r.changes, { same: 5 }, t.lastOutput());
        assert.deepEqual(await t.outputs(), outputs);
        await t.preview({ expectNoChanges: true });
    });

    it("pulumi destroy restores the host, removes the published prefix, the archive and the images at the site", async () => {
        assert.notDeepEqual(snapshotTree(hostRoot, { identity: true }), hostBefore);
        assert.ok(fs.existsSync(path.join(mirrorRoot, "debian", "dists", "bookworm", "InRelease")));
        const r = await t.destroy();
        assert.equal(r.changes.delete, 5, t.lastOutput());
        assert.deepEqual(snapshotTree(hostRoot, { identity: true }), hostBefore);
        assert.ok(!fs.existsSync(path.join(mirrorRoot, "debian")), "the published prefix is still there");
        assert.ok(!fs.existsSync(archive()), "the archive is still there");
        for (const image of Object.values(release)) {
            const inspect = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${image.atSite}`], false);
            assert.notEqual(inspect.code, 0, `${image.atSite} is still served`);
        }
    });
});
