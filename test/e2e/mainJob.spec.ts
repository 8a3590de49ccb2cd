import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { systemDebianArchive } from "../../provider/apt/system";
import { archiveUnreachable } from "../harness/fixtures/archive";
import { packageRoot, stateWithoutManifest } from "../harness/program";
import { type RunResult, run } from "../harness/servers/process";
import { makeTempDir, removeTempDir } from "../harness/tmp";
import { snapshotTree } from "../harness/tree";

/**
 * The main job as a newcomer runs it: `npm run main` (scripts/main.sh), the real CLI running the
 * repository's own Pulumi.yaml through the language host, against the machine's Debian archive.
 * Its state and data go to temporary directories (AIRGAP_STATE_DIR, `dataDir`) under a stack of
 * its own, so the repository's default stack is not touched.
 */
describe("npm run main (the default stack) with the real Pulumi CLI", function () {
    this.timeout(600_000);

    const stack = `e2e-${process.pid}`;
    let state: string;
    let data: string;

    const main = (...args: string[]): Promise<RunResult> =>
        run("bash", [path.join(packageRoot, "scripts", "main.sh"), ...args], {
            cwd: packageRoot,
            env: {
                ...process.env,
                AIRGAP_SKIP_SETUP: "1",
                AIRGAP_STATE_DIR: state,
                PULUMI_STACK: stack,
                PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
                PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                PULUMI_DEBUG_COMMANDS: "true",
                NO_COLOR: "1",
            },
            check: false,
            timeoutMs: 300_000,
        });
    const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stdout}${r.stderr}`);

    /** Everything in the stack's state but the manifest (its time), secrets in plain text. */
    const stateContent = async () => {
        const r = await main("stack", "export", "--show-secrets");
        ok(r, "stack export");
        return stateWithoutManifest(r.stdout);
    };

    before(async function () {
        const archive = systemDebianArchive();
        const why = archive
            ? await archiveUnreachable(archive.url, archive.distribution)
            : "no Debian archive with a main component in /etc/apt/sources.list.d";
        if (why) {
            console.log(`      skipped: the machine's Debian archive is not usable: ${why}`);
            this.skip();
        }
        state = await makeTempDir("main-state");
        data = await makeTempDir("main-data");
        ok(await main("config", "set", "dataDir", data), "config set dataDir");
    });

    after(async () => {
        if (state) {
            await main("destroy");
            await main("stack", "rm", "--yes", "--force", "--non-interactive");
            await removeTempDir(state);
            await removeTempDir(data);
        }
        fs.rmSync(path.join(packageRoot, `Pulumi.${stack}.yaml`), { force: true });
    });

    it("up mirrors hello with its dependencies, builds the mirror image and points the host at the mirror; preview then shows no change", async () => {
        const up = await main();
        ok(up, "npm run main");
        assert.match(up.stdout, /hello\/amd64\s*: "/);
        const published = path.join(data, "mirror", "debian");
        assert.ok(fs.existsSync(path.join(published, "dists")), "nothing published");
        const sources = fs.readFileSync(path.join(data, "host", "etc/apt/sources.list.d/site-debian.sources"), "utf8");
        assert.match(sources, new RegExp(`^URIs: file://${published}$`, "m"));
        // The mirror VM's data image, read back by qemu-img and debugfs.
        const image = path.join(data, "images", "mirror.qcow2");
        assert.equal(JSON.parse((await run("qemu-img", ["info", "--output=json", image])).stdout).format, "qcow2");
        const raw = path.join(await makeTempDir("main-image"), "disk.raw");
        await run("qemu-img", ["convert", "-O", "raw", image, raw]);
        const listing = await run("debugfs", ["-R", "ls -p /apt/debian/dists", raw]);
        assert.match(listing.stdout, /\/bookworm\/|\/[a-z]+\//, listing.stdout);
        // What a person wants to see: where the mirror is, the image, the apt line.
        assert.match(up.stdout, /mirrorPackageCount\s*:\s*\d+/);
        assert.match(up.stdout, /imagePath\s*:\s*".*mirror\.qcow2"/);
        assert.match(up.stdout, /aptLine\s*:\s*"deb \[signed-by=\/etc\/apt\/keyrings\/site-debian\.asc\] file:\/\//);
        // The signing key is a stack secret, not a loose file.
        assert.ok(!fs.existsSync(path.join(data, "keys")), "a key file was written");
        const stackFile = fs.readFileSync(path.join(packageRoot, `Pulumi.${stack}.yaml`), "utf8");
        assert.match(stackFile, /signingKey:\s*\n\s*secure: /);
        ok(await main("preview", "--expect-no-changes"), "preview --expect-no-changes");
    });

    it("a package that matches nothing fails up and preview fast, naming it, and changes nothing", async () => {
        ok(await main("config", "set", "packages", '["hello","no-such-package-xyz"]'), "config set packages");
        const before = {
            state: await stateContent(),
            data: snapshotTree(data, { identity: true }),
        };
        for (const op of [[], ["preview"]]) {
            const started = Date.now();
            const r = await main(...op);
            const elapsed = Date.now() - started;
            const out = `${r.stdout}${r.stderr}`;
            assert.notEqual(r.code, 0, `npm run main ${op.join(" ")} succeeded:\n${out}`);
            assert.ok(elapsed < 60_000, `npm run main ${op.join(" ")} took ${elapsed} ms`);
            assert.match(
                out,
                /error: AptMirror "debian": packages\[1\] "no-such-package-xyz" matches nothing in http\S+ main/,
            );
            assert.doesNotMatch(out, /unhandled exception|error serializing property|^\s+at /m);
        }
        assert.deepEqual(await stateContent(), before.state, "the state changed");
        // The published mirror, the host files, the lock file and the signing key: all as they were.
        const after = snapshotTree(data, { identity: true });
        assert.deepEqual(
            Object.fromEntries(Object.entries(after).filter(([p]) => !p.startsWith("mirror.airgap/"))),
            Object.fromEntries(Object.entries(before.data).filter(([p]) => !p.startsWith("mirror.airgap/"))),
        );
        ok(await main("config", "rm", "packages"), "config rm packages");
        ok(await main("preview", "--expect-no-changes"), "preview --expect-no-changes after the fix");
    });
});
