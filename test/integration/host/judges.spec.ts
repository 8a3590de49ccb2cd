/**
 * The files HostMirrorConfig writes, read by their real consumers: skopeo resolves an image through
 * our registries.conf drop-in, apt-get updates from our deb822 source with our keyring.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { operations } from "../../../provider/host/operations";
import { makeAptClient } from "../../harness/fixtures/aptget";
import { buildRepo } from "../../harness/fixtures/aptrepo";
import { makeOciImage } from "../../harness/fixtures/oci";
import { startStaticServer } from "../../harness/servers/http";
import { run } from "../../harness/servers/process";
import { startRegistry } from "../../harness/servers/registry";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

describe("HostMirrorConfig output judged by skopeo and apt-get", function () {
    this.timeout(180_000);

    it("skopeo pulls by digest through the registries.conf drop-in, and not by tag", async () => {
        const registry = await startRegistry();
        const image = await makeOciImage({ tag: "1.0" });
        const root = await makeTempDir("host-skopeo");
        try {
            // The mirror holds the image under the namespace the drop-in maps the source to.
            execFileSync("skopeo", [
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                image.reference,
                `docker://${registry.host}/mirror/ns/app:1.0`,
            ]);
            await operations.create({
                name: "site",
                target: { local: { root } },
                registries: [{ source: "unreachable.invalid", mirrors: [`${registry.host}/mirror`], insecure: true }],
            });
            const conf = path.join(root, "etc/containers/registries.conf.d/site.conf");
            const skopeo = (ref: string) =>
                spawnSync("skopeo", ["--registries-conf", conf, "inspect", "--raw", "--retry-times", "0", ref], {
                    encoding: "utf8",
                    timeout: 60_000,
                });

            const byDigest = skopeo(`docker://unreachable.invalid/ns/app@${image.top.digest}`);
            assert.equal(byDigest.status, 0, byDigest.stderr);
            const raw = fs.readFileSync(path.join(image.dir, "blobs/sha256", image.top.digest.slice(7)), "utf8");
            assert.equal(byDigest.stdout, raw);

            // mirror-by-digest-only (the default) keeps tag pulls away from the mirror.
            const byTag = skopeo("docker://unreachable.invalid/ns/app:1.0");
            assert.notEqual(byTag.status, 0);
            assert.doesNotMatch(byTag.stderr, /registries\.conf|toml/i, "the drop-in itself must parse");
        } finally {
            await registry.stop();
            await image.close();
            await removeTempDir(root);
        }
    });

    it("apt-get updates from the deb822 source and its keyring, signature checking on", async function () {
        const probe = spawnSync("unshare", ["-m", "true"]);
        if (probe.status !== 0) {
            // Signed-By names /etc/apt/keyrings/<name>.asc; a private mount namespace lets the
            // test put our keyring there without changing the machine.
            this.skip();
        }
        const repo = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "hello-airgap", version: "1.0-1" }] },
            signWith: "ed25519",
        });
        const server = await startStaticServer(repo.dir);
        const root = await makeTempDir("host-apt");
        // The client only provides the private state dirs; its own source list is not used.
        const client = await makeAptClient({
            sources: [{ uri: server.url, suites: ["bookworm"], components: ["main"], signedBy: repo.publicKeyArmored }],
        });
        try {
            await operations.create({
                name: "site",
                target: { local: { root } },
                apt: [
                    {
                        name: "site-debian",
                        uris: [server.url],
                        suites: ["bookworm"],
                        components: ["main"],
                        signedBy: repo.publicKeyArmored,
                    },
                ],
            });
            // Asynchronous: the HTTP server answering apt-get runs in this process.
            const apt = (args: string[]) =>
                run(
                    "unshare",
                    [
                        "-m",
                        "sh",
                        "-c",
                        'mount --bind "$0" /etc/apt/keyrings && exec "$@"',
                        path.join(root, "etc/apt/keyrings"),
                        ...args,
                        "-o",
                        `Dir::Etc::sourceparts=${path.join(root, "etc/apt/sources.list.d")}`,
                        "-o",
                        "Dir::Etc::sourcelist=/dev/null",
                    ],
                    { env: { ...process.env, APT_CONFIG: client.configPath }, timeoutMs: 120_000 },
                );
            const update = await apt(["apt-get", "update"]);
            const said = update.stdout + update.stderr;
            assert.equal(update.code, 0, said);
            // apt-get update exits 0 even when an index failed: any error or warning line fails the test.
            assert.doesNotMatch(said, /^(Err|W|E):/m, said);
            assert.match(said, /^Get:\d+ \S+ bookworm InRelease/m, said);
            const policy = await apt(["apt-cache", "policy", "hello-airgap"]);
            assert.match(policy.stdout, /Candidate: 1\.0-1/, policy.stdout + policy.stderr);
        } finally {
            await client.close();
            await server.close();
            await repo.close();
            await removeTempDir(root);
        }
    });
});
