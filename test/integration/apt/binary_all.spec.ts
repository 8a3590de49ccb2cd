import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { checkRequest, fetchPackageIndexes, fetchRelease } from "../../../provider/apt/fetch";
import { loadPublicKeys } from "../../../provider/pgp/verify";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { type AptRepo, buildRepo } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll } from "../../harness/tmp";

/**
 * A `binary-all` index the Release lists while its `Architectures` does not name `all`, as in
 * Debian's security archive: apt never fetches it (the `all` packages are in `binary-amd64`), and
 * mirrors let it go stale, so it no longer matches the signed Release. Neither apt-get nor the
 * index reader may fail on it.
 */
describe("apt indexes: binary-all listed without all in Architectures", function () {
    this.timeout(120_000);

    let repo: AptRepo;
    let server: StaticServer;

    before(async () => {
        repo = await buildRepo({
            distribution: "bookworm-security",
            components: { main: [{ name: "tool", version: "1.0-1", arch: "all" }] },
        });
        const allDir = join(repo.distDir, "main", "binary-all");
        await mkdir(allDir, { recursive: true });
        await writeFile(join(allDir, "Packages"), "Package: tool\nVersion: 1.0-1\nArchitecture: all\n\n");
        // Signed as it is, then replaced: the index no longer matches the Release.
        await repo.reindex();
        await writeFile(join(allDir, "Packages"), "Package: tool\nVersion: 0.9-1\nArchitecture: all\n\n");
        server = await startStaticServer(repo.dir);
    });

    after(async () => {
        await server?.close();
        await repo?.close();
        await cleanupAll();
    });

    it("the fixture is as the security archive is: listed, stale, and not in Architectures", async () => {
        const release = await fetchRelease({
            url: server.url,
            distribution: "bookworm-security",
            keys: await loadPublicKeys(repo.publicKeyArmored),
        });
        assert.ok(release.release.files.some((f) => f.path === "main/binary-all/Packages"));
        assert.deepEqual(release.release.architectures, ["amd64"]);
    });

    it("apt-get update ignores it, and so does the index reader: the all package comes from binary-amd64", async () => {
        const client = await makeAptClient({
            sources: [
                {
                    uri: `${server.url}/`,
                    suites: ["bookworm-security"],
                    components: ["main"],
                    signedBy: repo.publicKeyArmored,
                },
            ],
        });
        try {
            const update = await client.update();
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(
                update.stdout + update.stderr,
                /binary-all|^(W|E|Err):/m,
                update.stdout + update.stderr,
            );
        } finally {
            await client.close();
        }

        const release = await fetchRelease({
            url: server.url,
            distribution: "bookworm-security",
            keys: await loadPublicKeys(repo.publicKeyArmored),
        });
        const result = await fetchPackageIndexes({ release, ...checkRequest(release, ["main"], ["amd64"]) });
        assert.deepEqual(
            result.indexes.map((i) => `${i.component}/${i.architecture}`),
            ["main/amd64"],
        );
        assert.deepEqual(
            result.packages.map((p) => `${p.name}_${p.version}_${p.architecture}`),
            ["tool_1.0-1_all"],
        );
    });
});
