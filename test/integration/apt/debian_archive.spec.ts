import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type AptMirrorSpec, type AptSourceSpec, resolveLock, syncMirror } from "../../../provider/apt/mirror";
import { describeAptResult, makeAptClient } from "../../harness/fixtures/aptget";
import { archiveUnreachable } from "../../harness/fixtures/archive";
import { type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * The real upstream: the machine's own Debian archive, as its APT sources name it. nginx and its
 * dependencies are mirrored from it (verified with the archive's keyring), published signed with
 * our key, and installed from our mirror by apt-get with signature checking on.
 */

interface ArchiveSource {
    uri: string;
    suite: string;
    signedBy: string;
    file: string;
}

/** deb822 stanzas (comment lines dropped, continuation lines joined with "\n"). */
function deb822(text: string): Map<string, string>[] {
    const stanzas: Map<string, string>[] = [];
    let current: Map<string, string> | undefined;
    let last: string | undefined;
    for (const line of text.split("\n")) {
        if (line.startsWith("#")) continue;
        if (line.trim() === "") {
            current = undefined;
            continue;
        }
        if (/^\s/.test(line) && current !== undefined && last !== undefined) {
            current.set(last, `${current.get(last)}\n${line.trim()}`);
            continue;
        }
        const m = /^([^:\s]+):\s*(.*)$/.exec(line);
        if (m === null) continue;
        if (current === undefined) {
            current = new Map();
            stanzas.push(current);
        }
        last = m[1]!.toLowerCase();
        current.set(last, m[2]!.trim());
    }
    return stanzas;
}

/** A suite such as "bookworm": not -security, -updates, -backports. */
const releaseSuite = (suite: string) => /^[a-z]+$/.test(suite) && !["sid", "unstable", "experimental"].includes(suite);

/** The first Debian release suite the machine's APT sources name, with its Signed-By keyring. */
function machineArchive(dir = "/etc/apt/sources.list.d"): ArchiveSource | string {
    if (!existsSync(dir)) return `${dir} does not exist`;
    const found: ArchiveSource[] = [];
    for (const name of readdirSync(dir).sort()) {
        const file = join(dir, name);
        const text = readFileSync(file, "utf8");
        if (name.endsWith(".sources")) {
            for (const stanza of deb822(text)) {
                const types = (stanza.get("types") ?? "").split(/\s+/);
                const signedBy = stanza.get("signed-by") ?? "";
                if (!types.includes("deb") || stanza.get("enabled") === "no" || signedBy.includes("\n")) continue;
                for (const uri of (stanza.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
                    for (const suite of (stanza.get("suites") ?? "").split(/\s+/).filter(releaseSuite)) {
                        found.push({ uri, suite, signedBy, file });
                    }
                }
            }
        } else if (name.endsWith(".list")) {
            for (const raw of text.split("\n")) {
                const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(raw.replace(/#.*$/, "").trim());
                if (m === null || !releaseSuite(m[3]!)) continue;
                const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? "")?.[1] ?? "";
                found.push({ uri: m[2]!, suite: m[3]!, signedBy, file });
            }
        }
    }
    const debian = found.filter((s) => s.signedBy !== "" && existsSync(s.signedBy) && /debian/.test(s.signedBy));
    if (debian.length === 0) {
        return `no Debian release suite with a Signed-By keyring in ${dir} (found ${found.length} suites)`;
    }
    return debian[0]!;
}

/** Undefined when the archive's InRelease answers 200 within a few seconds, else why not. */
function unreachable(archive: ArchiveSource): Promise<string | undefined> {
    return archiveUnreachable(archive.uri, archive.suite);
}

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
        const found = machineArchive();
        const why = typeof found === "string" ? found : await unreachable(found);
        if (why !== undefined) {
            console.log(`      skipped: the machine's Debian archive is not usable: ${why}`);
            this.skip();
        }
        archive = found as ArchiveSource;
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
