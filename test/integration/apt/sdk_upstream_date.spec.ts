import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parseRelease } from "../../../provider/apt/release";
import { AptMirror } from "../../../sdk/aptMirror";
import { type AptRepo, buildRepo } from "../../harness/fixtures/aptrepo";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * The AptMirror SDK under Pulumi's mocks, against a real upstream: the lock it resolves carries
 * the upstream Release `Date` as the `upstreamDate` input (what `check` compares with the last
 * one), the lock file keeps it beside the packages, and a lock file written without it still
 * pins the packages.
 */

describe("AptMirror SDK: the lock's upstream Release date", function () {
    this.timeout(120_000);

    let upstream: AptRepo;
    let server: StaticServer | undefined;
    let root: string;
    let lockFile: string;
    const inputs = new Map<string, Record<string, unknown>>();
    const waiting = new Map<string, (inputs: Record<string, unknown>) => void>();

    /** The inputs the engine receives for a new AptMirror named `name`. */
    const declare = (name: string): Promise<Record<string, unknown>> => {
        const registered = new Promise<Record<string, unknown>>((resolve) => waiting.set(name, resolve));
        new AptMirror(name, {
            source: {
                url: `http://127.0.0.1:${port}`,
                distribution: "bookworm",
                key: upstream.publicKeyArmored,
            },
            packages: ["app"],
            publish: { root, prefix: name },
            allowUnsigned: true,
            lockFile,
        });
        return registered;
    };
    let port = 0;

    before(async () => {
        upstream = await buildRepo({
            distribution: "bookworm",
            components: { main: [{ name: "app", version: "1.0-1", size: 5_000 }] },
        });
        server = await startStaticServer(upstream.dir);
        port = server.port;
        root = await makeTempDir("sdk-date-root");
        lockFile = join(await makeTempDir("sdk-date-lock"), "debian.lock.json");
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    inputs.set(args.name, args.inputs);
                    waiting.get(args.name)?.(args.inputs);
                    return { id: args.name, state: args.inputs };
                },
                call: (args) => args.inputs,
            },
            "project",
            "stack",
            false,
        );
    });

    after(async () => {
        await server?.close();
        await upstream?.close();
        await cleanupAll();
    });

    it("a resolved lock passes the upstream Release Date as upstreamDate and writes it to the lock file", async () => {
        const date = parseRelease(readFileSync(upstream.releasePath, "utf8")).date!.toISOString();
        const got = await declare("first");
        // The lock as the provider receives it: text, a `name/arch version` line each.
        assert.equal(got.packages, "app/amd64 1.0-1\n");
        assert.equal(got.upstreamDate, date);
        assert.equal(got.allowDowngrade, false);
        const saved = JSON.parse(readFileSync(lockFile, "utf8"));
        assert.deepEqual(saved.packages, { "app/amd64": "1.0-1" });
        assert.equal(saved.upstreamDate, date);
    });

    it("a lock read from the file carries its date, with upstream gone", async () => {
        const saved = JSON.parse(readFileSync(lockFile, "utf8"));
        await server!.close();
        server = undefined;
        const got = await declare("second");
        // The lock as the provider receives it: text, a `name/arch version` line each.
        assert.equal(got.packages, "app/amd64 1.0-1\n");
        assert.equal(got.upstreamDate, saved.upstreamDate);
    });

    it("a lock file written without the date still pins the packages, with no date to compare", async () => {
        const { upstreamDate: _, ...older } = JSON.parse(readFileSync(lockFile, "utf8"));
        writeFileSync(lockFile, `${JSON.stringify(older, null, 2)}\n`);
        const got = await declare("third");
        // The lock as the provider receives it: text, a `name/arch version` line each.
        assert.equal(got.packages, "app/amd64 1.0-1\n");
        assert.equal(got.upstreamDate, undefined);
    });
});
