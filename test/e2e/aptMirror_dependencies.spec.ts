/**
 * AptMirrors chained by `dependencies.from` through the real CLI: a base, an updates and a
 * security suite (each unsatisfiable alone but the first); preview shows what other mirrors
 * supply (`external`), up publishes each mirror with only its own packages, apt-get reading only
 * the three mirrors installs what it installs from the three upstream suites, and a second
 * preview has no changes. A cycle of mirrors and a mirror of another architecture set fail
 * the program, naming the argument, with nothing published.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AptMirrorArgs } from "../../sdk";
import type { AptClient } from "../harness/fixtures/aptget";
import {
    aptChoices,
    buildDebianLikeSuites,
    type DebianLikeSuites,
    upstreamAptSources,
} from "../harness/fixtures/aptchain";
import { type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import { createProgramStack, errorDiagnostics, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { makeTempDir, removeTempDir } from "../harness/tmp";

/** Three mirrors: updates names bookworm, security names updates (and, through it, bookworm). */
const chainProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const signing = { privateKey: config.requireSecret("signingKey") };
const m = config.requireObject<Record<string, AptMirrorArgs>>("mirrors");
const shape = config.require("shape");
export let external: unknown;
export let packages: unknown;
if (shape === "chain") {
    const bookworm = new AptMirror("bookworm", { ...m.bookworm, signing });
    const updates = new AptMirror("updates", { ...m.updates, signing, dependencies: { from: [bookworm] } });
    const security = new AptMirror("security", {
        ...m.security,
        signing,
        dependencies: { from: [updates] },
        lockFile: "security.lock.json",
    });
    external = { updates: updates.external, security: security.external };
    packages = { bookworm: bookworm.packages, updates: updates.packages, security: security.packages };
} else if (shape === "cycle") {
    let later: (mirror: AptMirror) => void = () => undefined;
    const named = new Promise<AptMirror>((resolve) => {
        later = resolve;
    });
    const updates = new AptMirror("updates", { ...m.updates, signing, dependencies: { from: [named] } });
    const security = new AptMirror("security", { ...m.security, signing, dependencies: { from: [updates] } });
    later(security);
} else {
    // The base suite again, for amd64 and arm64, naming the amd64 mirror of it.
    const bookworm = new AptMirror("bookworm", { ...m.bookworm, signing });
    new AptMirror("bookworm-arm", {
        ...m.bookworm,
        source: { ...m.bookworm.source, architectures: ["amd64", "arm64"] },
        publish: { ...m.bookworm.publish, prefix: "debian-arm" },
        signing,
        dependencies: { from: [bookworm] },
    } as AptMirrorArgs);
}
`;

describe("AptMirrors chained by dependencies.from, with the real Pulumi CLI", function () {
    this.timeout(600_000);

    let suites: DebianLikeSuites;
    let upstreamKeys: GpgKeyring;
    let signing: GpgKeyring;
    let root: string;
    let mirrorServer: StaticServer;
    const clients: AptClient[] = [];
    const stacks: ProgramStack[] = [];
    const roots: string[] = [];

    const mirrors = (root: string): Record<string, AptMirrorArgs> => {
        const args = (which: "base" | "updates" | "security", query: string, prefix: string): AptMirrorArgs => ({
            source: {
                url: suites.servers[which].url,
                distribution: suites[which].distribution,
                components: ["main"],
                architectures: ["amd64"],
                key: upstreamKeys.publicKeysArmored,
            },
            packages: [query],
            publish: { root, prefix, origin: "pulumi-airgap-test" },
        });
        return {
            bookworm: args("base", "libc6", "debian"),
            updates: args("updates", "libssl3", "debian"),
            security: args("security", "openssh-server", "debian-security"),
        };
    };
    const stack = async (name: string, shape: string, publishRoot: string) => {
        const t = await createProgramStack(name, {
            source: chainProgram,
            config: () => ({
                mirrors: JSON.stringify(mirrors(publishRoot)),
                shape,
                signingKey: { secret: signing.keys[0]!.privateKeyArmored },
            }),
        });
        stacks.push(t);
        return t;
    };

    before(async () => {
        upstreamKeys = await makeGpgKeyring(["rsa"]);
        signing = await makeGpgKeyring(["rsa"]);
        suites = await buildDebianLikeSuites(upstreamKeys);
        root = await makeTempDir("apt-dependencies-e2e");
        mirrorServer = await startStaticServer(root);
    });
    after(async () => {
        for (const t of stacks) await t.dispose();
        for (const c of clients) await c.close();
        await mirrorServer?.close();
        await suites?.close();
        await upstreamKeys?.close();
        await signing?.close();
        await removeTempDir(root);
        for (const r of roots) await removeTempDir(r);
    });

    it("preview shows what other mirrors supply; apt-get installs from the three mirrors what the upstream suites give", async () => {
        const t = await stack("aptdeps", "chain", root);
        await t.preview();
        const shown = t.lastOutput();
        assert.match(shown, /external/, shown);
        assert.ok(shown.includes(`2.36-9+deb12u9 from ${suites.servers.base.url} bookworm`), shown);
        assert.ok(shown.includes(`3.0.15-1~deb12u1 from ${suites.servers.updates.url} bookworm-updates`), shown);
        assert.deepEqual(fs.readdirSync(root), [], "preview publishes nothing");

        const up = await t.up();
        assert.deepEqual(
            up.outputs.packages,
            {
                bookworm: { "libc6/amd64": "2.36-9+deb12u9" },
                updates: { "libssl3/amd64": "3.0.15-1~deb12u1" },
                security: { "openssh-client/amd64": "1:9.2p1-2+deb12u3", "openssh-server/amd64": "1:9.2p1-2+deb12u3" },
            },
            t.lastOutput(),
        );
        const base = `from ${suites.servers.base.url} bookworm`;
        assert.deepEqual(up.outputs.external, {
            updates: { "libc6/amd64": `2.36-9+deb12u9 ${base}` },
            security: {
                "libc6/amd64": `2.36-9+deb12u9 ${base}`,
                "libssl3/amd64": `3.0.15-1~deb12u1 from ${suites.servers.updates.url} bookworm-updates`,
            },
        });
        const lockFile = JSON.parse(fs.readFileSync(path.join(t.dir, "security.lock.json"), "utf8"));
        assert.deepEqual(lockFile.external, (up.outputs.external as Record<string, unknown>).security);

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
        assert.equal(Object.keys(fromMirrors.versions).length, 4, JSON.stringify(fromMirrors.versions));
        assert.deepEqual(fromMirrors.files, fromUpstream.files);

        await t.preview({ expectNoChanges: true });
    });

    for (const [shape, expected] of [
        [
            "cycle",
            /AptMirror "(updates|security)": dependencies\.from\[0\]: AptMirror "\w+" depends back on this mirror/,
        ],
        [
            "arch",
            /AptMirror "bookworm-arm": dependencies\.from\[0\]: architectures differ: AptMirror "bookworm" reads amd64, this mirror reads amd64 arm64/,
        ],
    ] as const) {
        it(`${shape}: preview and up fail naming the argument, and the mirror publishes nothing`, async () => {
            const elsewhere = await makeTempDir(`apt-dependencies-${shape}`);
            const t = await stack(`aptdeps-${shape}`, shape, elsewhere);
            for (const op of [["preview"], ["up", "--yes", "--skip-preview"]]) {
                const r = await t.cli([...op, "--non-interactive"]);
                assert.notEqual(r.code, 0, t.lastOutput());
                assert.ok(
                    errorDiagnostics(r).some((d) => expected.test(d)),
                    `${errorDiagnostics(r).join("\n")}\n${t.lastOutput()}`,
                );
            }
            // The failed mirrors' suites are not published (in "arch", bookworm is valid on its own).
            for (const suite of ["debian/dists/bookworm-updates", "debian-security", "debian-arm"]) {
                assert.ok(!fs.existsSync(path.join(elsewhere, suite)), suite);
            }
            roots.push(elsewhere);
        });
    }
});
