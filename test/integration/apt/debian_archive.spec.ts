import assert from "node:assert/strict";
import { type AptMirrorSpec, type AptSourceSpec, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { archiveUnreachable } from "../../harness/fixtures/archive";
import {
    type MachineDebianSuites,
    type MachineSuite,
    machineDebianSuites,
} from "../../harness/fixtures/machinearchive";
import { type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * The real upstream: the machine's own Debian archive, as its APT sources name it. nginx and its
 * dependencies are mirrored from it (verified with the archive's keyring), published signed with
 * our key, and installed from our mirror by apt-get with signature checking on.
 */

/** The machine's release suite, from its APT sources (`systemAptSources`). */
type ArchiveSource = MachineSuite;

describe("AptMirror from the machine's own Debian archive, judged by apt-get", function () {
    this.timeout(900_000);

    let archive: ArchiveSource;
    let signing: GpgKeyring | undefined;
    let root: string;
    let mirrorServer: StaticServer | undefined;
    /**
     * Shared by resolveLock and syncMirror, so the indexes are downloaded once per run. Not kept
     * between runs: with the archive this close, reading a kept 45 MB index measured no faster
     * than downloading the compressed one again.
     */
    let cacheDir: string;

    before(async function () {
        const found = machineDebianSuites();
        const why =
            typeof found === "string" ? found : await archiveUnreachable(found.release.uri, found.release.suite);
        if (why !== undefined) {
            console.log(`      skipped: the machine's Debian archive is not usable: ${why}`);
            this.skip();
        }
        archive = (found as MachineDebianSuites).release;
        cacheDir = await makeTempDir("debian-archive-indexes");
        signing = await makeGpgKeyring(["ed25519"]);
        root = await makeTempDir("debian-archive");
        mirrorServer = await startStaticServer(root);
    });

    after(async () => {
        await mirrorServer?.close();
        await signing?.close();
        await cleanupAll();
    });

    it("mirrors nginx with its dependencies, and apt-get installs it from our mirror", async () => {
        const source: AptSourceSpec = {
            url: archive.uri,
            distribution: archive.suite,
            components: ["main"],
            architectures: ["amd64"],
            keyring: archive.signedBy,
        };
        const { lock, release } = await resolveLock({ source, queries: ["nginx"], withDeps: true, cacheDir });
        assert.ok(release.signedBy !== undefined, "the archive's Release was not verified");
        assert.ok(
            Object.keys(lock).some((k) => k === "nginx/amd64" || k === "nginx/all"),
            JSON.stringify(lock),
        );
        assert.ok(Object.keys(lock).length > 3, `nginx comes with its dependencies: ${JSON.stringify(lock)}`);
        assert.ok(lock["libc6/amd64"] !== undefined, "libc6 is in the closure");

        const spec: AptMirrorSpec = {
            source,
            packages: lock,
            publish: { root, prefix: "debian", origin: "site" },
            signing: { privateKey: signing!.keys[0]!.privateKeyArmored },
        };
        const state = await syncMirror(spec, { cacheDir });
        assert.equal(state.packageCount, Object.keys(lock).length);
        assert.deepEqual(state.packages, lock);
        assert.deepEqual(state.drift, []);

        const client = await makeAptClient({
            sources: [
                {
                    uri: `${mirrorServer!.url}/debian`,
                    suites: [archive.suite],
                    components: ["main"],
                    signedBy: state.publicKey,
                },
            ],
        });
        try {
            const update = await client.update();
            const text = update.stdout + update.stderr;
            assert.ok(update.ok, describeAptResult("apt-get update", update));
            assert.doesNotMatch(text, /Hash Sum mismatch|^(W|E|Err):/m, text);
            const install = await client.installDownloadOnly(["nginx"]);
            assert.ok(install.ok, describeAptResult("apt-get install --download-only nginx", install));
            assert.ok(
                install.files.some((f) => /^nginx_.*\.deb$/.test(f)),
                install.files.join(", "),
            );
            // apt-get found everything it wanted in our mirror: nothing outside the lock.
            const locked = new Set(Object.keys(lock).map((k) => k.split("/")[0]));
            for (const file of install.files) {
                assert.ok(locked.has(file.split("_")[0]!), `${file} is not in the lock`);
            }
        } finally {
            await client.close();
        }
    });
});
