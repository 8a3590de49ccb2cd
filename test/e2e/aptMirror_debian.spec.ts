/**
 * The machine's real Debian archive through the real CLI: a release suite, its -updates suite and
 * its -security suite (another URI, whose Release names its components `updates/main`) mirrored
 * by three AptMirrors into one publish root, the updates and security mirrors taking what the
 * others carry through `dependencies.from`. apt-get judges the result: reading only our three
 * mirrors it installs, for the whole set with dependencies, the very versions (and files) it
 * picks reading the archive's three suites, and a second preview has no changes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AptClient, AptSourceSpec } from "../harness/fixtures/aptget";
import { describeAptResult, makeAptClient } from "../harness/fixtures/aptget";
import { type GpgKeyring, makeGpgKeyring } from "../harness/fixtures/aptrepo";
import {
    type MachineDebianSuites,
    type MachineSuite,
    machineDebianSuites,
    machineSuitesUnreachable,
} from "../harness/fixtures/machinearchive";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { type StaticServer, startStaticServer } from "../harness/servers/http";
import { makeTempDir, removeTempDir } from "../harness/tmp";

const PACKAGES = ["nginx", "openssh-server", "curl", "postgresql-15", "python3"];

/** Three mirrors, one publish root: the release and updates suites share the `debian` prefix and pool. */
const debianProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptSourceArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const root = config.require("root");
const packages = config.requireObject<string[]>("packages");
const sources = config.requireObject<Record<"release" | "updates" | "security", AptSourceArgs>>("sources");
const common = { packages, withDeps: true, signing: { privateKey: config.requireSecret("signingKey") } };

const release = new AptMirror("release", {
    ...common,
    source: sources.release,
    publish: { root, prefix: "debian", origin: "site" },
});
const updates = new AptMirror("updates", {
    ...common,
    source: sources.updates,
    publish: { root, prefix: "debian", origin: "site" },
    dependencies: { from: [release] },
});
const security = new AptMirror("security", {
    ...common,
    source: sources.security,
    publish: { root, prefix: "debian-security", origin: "site" },
    dependencies: { from: [release, updates] },
});
const each = <T>(f: (m: AptMirror) => pulumi.Output<T>) => ({
    release: f(release),
    updates: f(updates),
    security: f(security),
});
export const locks = each((m) => m.packages);
export const external = each((m) => m.external);
export const counts = each((m) => m.packageCount);
export const bytes = each((m) => m.bytes);
export const publicKey = release.publicKey;
`;

/** `name` → `version` of every package `apt-get install -s` would install. */
function simulatedVersions(stdout: string): Record<string, string> {
    const versions: Record<string, string> = {};
    for (const m of stdout.matchAll(/^Inst (\S+) \((\S+) [^)]*\)/gm)) {
        versions[m[1]!] = m[2]!;
    }
    return versions;
}

/**
 * `file` → `size` of every file `apt-get install --print-uris` would download. (The hash it
 * prints is the MD5 sum only, which our indexes do not carry; SHA256 is compared apart.)
 */
function printedFiles(stdout: string): Record<string, string> {
    const files: Record<string, string> = {};
    for (const m of stdout.matchAll(/^'[^']+' (\S+) (\d+)/gm)) {
        files[m[1]!] = m[2]!;
    }
    return files;
}

/** `file` → SHA256 as the client's indexes list them, for `name=version` of each package. */
async function listedSha256(client: AptClient, versions: Record<string, string>): Promise<Record<string, string>> {
    const shown = await client.run("apt-cache", [
        "show",
        ...Object.entries(versions).map(([name, version]) => `${name}=${version}`),
    ]);
    assert.ok(shown.ok, describeAptResult("apt-cache show", shown));
    const sums: Record<string, string> = {};
    for (const stanza of shown.stdout.split(/\n\n+/)) {
        const field = (name: string) => new RegExp(`^${name}: (\\S+)$`, "m").exec(stanza)?.[1];
        const [name, version, architecture, sha256] = ["Package", "Version", "Architecture", "SHA256"].map(field);
        if (name !== undefined && version !== undefined && sha256 !== undefined) {
            // As apt-get names what it saves: name_version_arch.deb, the epoch's colon escaped.
            sums[`${name}_${version.replace(/:/g, "%3a")}_${architecture}.deb`] = sha256;
        }
    }
    return sums;
}

/** What apt-get picks for the set with these sources: versions, and the files it would fetch. */
async function aptPicks(
    client: AptClient,
): Promise<{ versions: Record<string, string>; files: Record<string, string> }> {
    const update = await client.update();
    assert.ok(update.ok, describeAptResult("apt-get update", update));
    assert.doesNotMatch(update.stdout + update.stderr, /^(W|E|Err):/m, describeAptResult("apt-get update", update));
    const simulated = await client.run("apt-get", ["install", "-s", ...PACKAGES]);
    assert.ok(simulated.ok, describeAptResult("apt-get install -s", simulated));
    const uris = await client.run("apt-get", ["install", "--print-uris", "-qq", ...PACKAGES]);
    assert.ok(uris.ok, describeAptResult("apt-get install --print-uris", uris));
    return { versions: simulatedVersions(simulated.stdout), files: printedFiles(uris.stdout) };
}

/** The entries of two maps that differ, one per line, for a failure message. */
function differences(ours: Record<string, string>, theirs: Record<string, string>): string {
    return [...new Set([...Object.keys(ours), ...Object.keys(theirs)])]
        .sort()
        .filter((k) => ours[k] !== theirs[k])
        .map((k) => `  ${k}: ours ${ours[k] ?? "(none)"}, archive ${theirs[k] ?? "(none)"}`)
        .join("\n");
}

describe("AptMirror of the machine's Debian archive (release, updates, security) through the real CLI", function () {
    this.timeout(1_200_000);

    let suites: Required<MachineDebianSuites>;
    let signing: GpgKeyring;
    let root: string;
    let server: StaticServer;
    let t: ProgramStack;
    const clients: AptClient[] = [];

    before(async function () {
        const found = machineDebianSuites();
        let why: string | undefined;
        if (typeof found === "string") {
            why = found;
        } else if (found.updates === undefined || found.security === undefined) {
            why = `the APT sources list ${found.release.suite} without ${found.updates === undefined ? "-updates" : "-security"}`;
        } else {
            why = await machineSuitesUnreachable([found.release, found.updates, found.security]);
        }
        if (why !== undefined) {
            console.log(`      skipped: the machine's Debian archive is not usable: ${why}`);
            this.skip();
        }
        suites = found as Required<MachineDebianSuites>;
        signing = await makeGpgKeyring(["ed25519"]);
        root = await makeTempDir("apt-debian-e2e");
        server = await startStaticServer(root);
    });

    after(async () => {
        await t?.dispose();
        for (const c of clients) await c.close();
        await server?.close();
        await signing?.close();
        if (root !== undefined) await removeTempDir(root);
    });

    it("apt-get picks from our three mirrors the versions it picks from the archive's three suites", async () => {
        const source = (s: MachineSuite) => ({
            url: s.uri,
            distribution: s.suite,
            components: ["main"],
            architectures: ["amd64"],
            keyring: s.signedBy,
        });
        t = await createProgramStack("aptdebian", {
            source: debianProgram,
            config: () => ({
                root,
                packages: JSON.stringify(PACKAGES),
                sources: JSON.stringify({
                    release: source(suites.release),
                    updates: source(suites.updates),
                    security: source(suites.security),
                }),
                signingKey: { secret: signing.keys[0]!.privateKeyArmored },
            }),
        });

        const up = await t.cli(["up", "--yes", "--skip-preview", "--non-interactive"], { timeoutMs: 900_000 });
        assert.equal(up.code, 0, t.lastOutput());
        const outputs = await t.outputs();
        const counts = outputs.counts as Record<string, number>;
        const bytes = outputs.bytes as Record<string, number>;
        const locks = outputs.locks as Record<string, Record<string, string>>;
        const external = outputs.external as Record<string, Record<string, string> | undefined>;
        const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
        console.log(
            `      pulumi up: ${(up.elapsedMs / 1000).toFixed(1)} s; packages ${JSON.stringify(counts)} ` +
                `(${total(counts)}), bytes ${JSON.stringify(bytes)} (${(total(bytes) / 1e6).toFixed(1)} MB); ` +
                `external: updates ${Object.keys(external.updates ?? {}).length}, security ${Object.keys(external.security ?? {}).length}`,
        );
        assert.ok(counts.release! > PACKAGES.length, JSON.stringify(counts));
        // Each queried name is copied by exactly one of the mirrors or, for the others, external.
        for (const name of PACKAGES) {
            const key = `${name}/amd64`;
            assert.ok(
                locks.release![key] !== undefined &&
                    (locks.security![key] !== undefined || external.security?.[key] !== undefined),
                `${key}: ${JSON.stringify({ locks, external })}`,
            );
        }

        const preview = await t.cli(["preview", "--expect-no-changes", "--non-interactive"], { timeoutMs: 600_000 });
        assert.equal(preview.code, 0, t.lastOutput());
        console.log(`      pulumi preview --expect-no-changes: ${(preview.elapsedMs / 1000).toFixed(1)} s`);

        const publicKey = outputs.publicKey as string;
        const ours = await makeAptClient({
            sources: [
                {
                    uri: `${server.url}/debian/`,
                    suites: [suites.release.suite, suites.updates.suite],
                    components: ["main"],
                    signedBy: publicKey,
                },
                {
                    uri: `${server.url}/debian-security/`,
                    suites: [suites.security.suite],
                    components: ["main"],
                    signedBy: publicKey,
                },
            ],
        });
        clients.push(ours);
        const archiveSources: AptSourceSpec[] = [suites.release, suites.updates, suites.security].map((s) => ({
            uri: `${s.uri}/`,
            suites: [s.suite],
            components: ["main"],
            signedBy: s.signedBy,
        }));
        const theirs = await makeAptClient({ sources: archiveSources });
        clients.push(theirs);

        const fromOurs = await aptPicks(ours);
        const fromArchive = await aptPicks(theirs);
        const count = Object.keys(fromArchive.versions).length;
        console.log(`      apt-get installs ${count} packages for ${PACKAGES.join(" ")}`);
        assert.ok(count > 50, JSON.stringify(fromArchive.versions));
        assert.deepEqual(
            fromOurs.versions,
            fromArchive.versions,
            `versions apt-get picks differ:\n${differences(fromOurs.versions, fromArchive.versions)}`,
        );
        assert.deepEqual(
            fromOurs.files,
            fromArchive.files,
            `files apt-get would fetch differ:\n${differences(fromOurs.files, fromArchive.files)}`,
        );

        // Downloaded from our mirror, every file is the archive's, byte for byte.
        const install = await ours.installDownloadOnly(PACKAGES);
        assert.ok(install.ok, describeAptResult("apt-get install --download-only", install));
        assert.deepEqual(install.files, Object.keys(fromArchive.files).sort());
        const expected = await listedSha256(theirs, fromArchive.versions);
        const got: Record<string, string> = {};
        for (const file of install.files) {
            got[file] = createHash("sha256")
                .update(fs.readFileSync(path.join(ours.archivesDir, file)))
                .digest("hex");
        }
        assert.deepEqual(got, expected, differences(got, expected));
    });
});
