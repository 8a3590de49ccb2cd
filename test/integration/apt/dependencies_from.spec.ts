/**
 * Dependencies resolved across mirrors (`dependencies.from`), engine level: a security suite and
 * an updates suite are not installable on their own; mirrored with the base suite as their
 * dependency source, an apt client whose sources are only the three mirrors installs what it
 * would install from the three upstream suites, the same versions from the same suites. And
 * the wrong inputs: another architecture set, a dependency satisfied nowhere, a candidate the
 * named mirror's lock does not hold.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    type AptDependencySpec,
    type AptLock,
    type AptSourceSpec,
    resolveLock,
    syncMirror,
} from "../../../provider/apt/mirror";
import { hasCode } from "../../../provider/errors";
import type { AptClient } from "../../harness/fixtures/aptget";
import {
    aptChoices,
    buildDebianLikeSuites,
    type DebianLikeSuites,
    upstreamAptSources,
} from "../../harness/fixtures/aptchain";
import { type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

describe("AptMirror dependencies resolved across mirrors", function () {
    this.timeout(300_000);

    let suites: DebianLikeSuites;
    let upstreamKeys: GpgKeyring;
    let signing: GpgKeyring;
    let root: string;
    let mirrorServer: StaticServer;
    const clients: AptClient[] = [];

    before(async () => {
        upstreamKeys = await makeGpgKeyring(["rsa"]);
        signing = await makeGpgKeyring(["ed25519"]);
        suites = await buildDebianLikeSuites(upstreamKeys);
        root = await makeTempDir("dependencies-from");
        mirrorServer = await startStaticServer(root);
    });
    after(async () => {
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await suites?.close();
        await upstreamKeys?.close();
        await signing?.close();
        await cleanupAll();
    });

    const source = (which: "base" | "updates" | "security", architectures = ["amd64"]): AptSourceSpec => ({
        url: suites.servers[which].url,
        distribution: suites[which].distribution,
        components: ["main"],
        architectures,
        key: upstreamKeys.publicKeysArmored,
    });
    const mirrorOf = (name: string, which: "base" | "updates" | "security", lock: AptLock): AptDependencySpec => ({
        argument: "dependencies.from[0]",
        mirror: `AptMirror "${name}"`,
        lock,
        source: source(which),
    });
    const caught = async (p: Promise<unknown>): Promise<Error & { code?: string; argument?: string }> => {
        try {
            await p;
        } catch (err) {
            return err as Error;
        }
        return assert.fail("expected an error");
    };

    it("the security suite alone is unsatisfiable", async () => {
        const err = await caught(
            resolveLock({ source: source("security"), queries: ["openssh-server"], withDeps: true }),
        );
        assert.ok(hasCode(err, "ERR_UNSATISFIABLE"), String(err));
        assert.match(err.message, /libc6 \(>= 2\.36\)/);
    });

    it("three mirrors chained by dependencies.from install what the three upstream suites install", async () => {
        const base = await resolveLock({
            source: source("base"),
            queries: ["libc6", "openssh-client"],
            withDeps: true,
        });
        assert.equal(base.external, undefined, "no dependency sources, no external");
        const updates = await resolveLock({
            source: source("updates"),
            queries: ["libssl3"],
            withDeps: true,
            dependencies: [mirrorOf("bookworm", "base", base.lock)],
        });
        assert.deepEqual(updates.lock, { "libssl3/amd64": "3.0.15-1~deb12u1" });
        assert.deepEqual(updates.external, {
            "libc6/amd64": `2.36-9+deb12u9 from ${suites.servers.base.url} bookworm`,
        });
        const security = await resolveLock({
            source: source("security"),
            queries: ["openssh-server"],
            withDeps: true,
            dependencies: [
                mirrorOf("updates", "updates", updates.lock),
                { ...mirrorOf("bookworm", "base", base.lock), argument: "dependencies.from[0]" },
            ],
        });
        // Copied: the security suite's own packages; libssl3 only the updates suite satisfies.
        assert.deepEqual(security.lock, {
            "openssh-client/amd64": "1:9.2p1-2+deb12u3",
            "openssh-server/amd64": "1:9.2p1-2+deb12u3",
        });
        assert.deepEqual(security.external, {
            "libc6/amd64": `2.36-9+deb12u9 from ${suites.servers.base.url} bookworm`,
            "libssl3/amd64": `3.0.15-1~deb12u1 from ${suites.servers.updates.url} bookworm-updates`,
        });

        const publish = (prefix: string) => ({ root, prefix, origin: "pulumi-airgap-test" });
        const key = { privateKey: signing.keys[0]!.privateKeyArmored };
        await syncMirror({ source: source("base"), packages: base.lock, publish: publish("debian"), signing: key });
        await syncMirror({
            source: source("updates"),
            packages: updates.lock,
            external: updates.external,
            publish: publish("debian"),
            signing: key,
        });
        const synced = await syncMirror({
            source: source("security"),
            packages: security.lock,
            external: security.external,
            publish: publish("debian-security"),
            signing: key,
        });
        assert.deepEqual(synced.external, security.external);
        // Nothing of another suite was copied into the security mirror's pool.
        const pool = fs.readdirSync(path.join(root, "debian-security/pool/main"), { recursive: true }).map(String);
        assert.ok(!pool.some((f) => /libc6|libssl3/.test(f)), pool.join("\n"));

        const signedBy = signing.keys[0]!.publicKeyArmored;
        const fromMirrors = await aptChoices(
            [
                {
                    uri: `${mirrorServer.url}/debian/`,
                    suites: ["bookworm", "bookworm-updates"],
                    components: ["main"],
                    signedBy,
                },
                {
                    uri: `${mirrorServer.url}/debian-security/`,
                    suites: ["bookworm-security"],
                    components: ["main"],
                    signedBy,
                },
            ],
            ["openssh-server"],
            clients,
        );
        const fromUpstream = await aptChoices(
            upstreamAptSources(suites, upstreamKeys.publicKeysArmored),
            ["openssh-server"],
            clients,
        );
        assert.deepEqual(fromMirrors.versions, fromUpstream.versions);
        assert.deepEqual(fromMirrors.versions, {
            libc6: "2.36-9+deb12u9 bookworm",
            libssl3: "3.0.15-1~deb12u1 bookworm-updates",
            "openssh-client": "1:9.2p1-2+deb12u3 bookworm-security",
            "openssh-server": "1:9.2p1-2+deb12u3 bookworm-security",
        });
        assert.deepEqual(fromMirrors.files, fromUpstream.files);
    });

    it("a candidate the named mirror's lock does not hold: the error names the query, the dependency and the mirror", async () => {
        const err = await caught(
            resolveLock({
                source: source("updates"),
                queries: ["libssl3"],
                withDeps: true,
                dependencies: [mirrorOf("bookworm", "base", { "openssh-client/amd64": "1:9.2p1-2+deb12u2" })],
            }),
        );
        assert.equal(err.argument, "packages[0]");
        assert.equal(
            err.message,
            `packages[0] "libssl3": dependency libc6 (>= 2.36) is satisfied only by bookworm's libc6 2.36-9+deb12u9, which AptMirror "bookworm"'s lock does not hold: add it to that mirror's packages`,
        );
    });

    it("a dependency satisfied nowhere lists this suite and each source it looked in", async () => {
        const err = await caught(
            resolveLock({
                source: source("security"),
                queries: ["openssh-server"],
                withDeps: true,
                dependencies: [{ argument: "dependencies.from[0]", source: source("updates") }],
            }),
        );
        assert.ok(hasCode(err, "ERR_UNSATISFIABLE"), String(err));
        assert.match(err.message, /Depends "libc6 \(>= 2\.36\)": nothing satisfies it for amd64/);
        assert.ok(
            err.message.includes(`this suite (${suites.servers.security.url}/dists/bookworm-security main)`),
            err.message,
        );
        assert.ok(
            err.message.includes(
                `dependencies.from[0] ${suites.servers.updates.url} bookworm-updates (${suites.servers.updates.url}/dists/bookworm-updates main)`,
            ),
            err.message,
        );
    });

    it("a dependency source of another architecture set is refused naming it", async () => {
        const err = await caught(
            resolveLock({
                source: source("security"),
                queries: ["openssh-server"],
                withDeps: true,
                dependencies: [{ ...mirrorOf("bookworm", "base", {}), source: source("base", ["amd64", "arm64"]) }],
            }),
        );
        assert.equal(err.argument, "dependencies.from[0]", err.message);
        assert.match(
            err.message,
            /^dependencies\.from\[0\]: architectures differ: AptMirror "bookworm" reads amd64 arm64, this mirror reads amd64/,
        );
    });
});
