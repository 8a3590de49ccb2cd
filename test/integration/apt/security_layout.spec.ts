/**
 * An upstream laid out like Debian's security archive: its Release names the components
 * `updates/main` while the files are under `main/`. The component sources.list writes (`main`)
 * works, and so does the Release's own spelling; the mirror publishes `main`, which apt-get reads.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { type AptClient, describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo, type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

describe("AptMirror of an upstream whose Release names its components updates/main", function () {
    this.timeout(120_000);

    let upstream: AptRepo;
    let server: StaticServer;
    let mirrorServer: StaticServer;
    let signing: GpgKeyring;
    let root: string;
    const clients: AptClient[] = [];

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm-security",
            componentPrefix: "updates",
            components: {
                main: [
                    { name: "openssh-server", version: "1:9.2p1-2+deb12u3", depends: "libc6" },
                    { name: "libc6", version: "2.36-9+deb12u9" },
                ],
            },
        });
        server = await startStaticServer(upstream.dir);
        signing = await makeGpgKeyring(["rsa"]);
        root = await makeTempDir("security-layout");
        mirrorServer = await startStaticServer(root);
    });
    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await server?.close();
        await upstream?.close();
        await signing?.close();
        await cleanupAll();
    });

    const source = (components: string[]) => ({
        url: server.url,
        distribution: "bookworm-security",
        components,
        architectures: ["amd64"],
        key: upstream.publicKeyArmored,
    });

    it("the fixture is laid out as the security archive is", () => {
        const release = fs.readFileSync(upstream.releasePath, "utf8");
        assert.match(release, /^Components: updates\/main$/m);
        assert.match(release, / main\/binary-amd64\/Packages$/m);
        assert.doesNotMatch(release, / updates\/main\/binary-amd64\/Packages$/m);
    });

    for (const components of [["main"], ["updates/main"]]) {
        it(`components ${JSON.stringify(components)}: resolves, publishes, and apt-get installs from the mirror`, async () => {
            const { lock } = await resolveLock({
                source: source(components),
                queries: ["openssh-server"],
                withDeps: true,
            });
            assert.deepEqual(lock, { "libc6/amd64": "2.36-9+deb12u9", "openssh-server/amd64": "1:9.2p1-2+deb12u3" });
            const prefix = components[0] === "main" ? "debian-security" : "debian-security-updates";
            await syncMirror({
                source: source(components),
                packages: lock,
                publish: { root, prefix },
                signing: { privateKey: signing.keys[0]!.privateKeyArmored },
            });
            const client = await makeAptClient({
                sources: [
                    {
                        uri: `${mirrorServer.url}/${prefix}/`,
                        suites: ["bookworm-security"],
                        components,
                        signedBy: signing.keys[0]!.publicKeyArmored,
                    },
                ],
            });
            clients.push(client);
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m);
            const install = await client.installDownloadOnly(["openssh-server"]);
            assert.ok(install.ok, describeAptResult("apt-get install", install));
            assert.deepEqual(install.files.map((f) => path.basename(f)).sort(), [
                "libc6_2.36-9+deb12u9_amd64.deb",
                "openssh-server_1%3a9.2p1-2+deb12u3_amd64.deb",
            ]);
        });
    }

    it("a component the archive does not offer is still refused, listing what it offers", async () => {
        await assert.rejects(
            resolveLock({ source: source(["contrib"]), queries: ["openssh-server"], withDeps: true }),
            /components\[0\]: "contrib" is not offered by \S+; it offers updates\/main/,
        );
    });
});
