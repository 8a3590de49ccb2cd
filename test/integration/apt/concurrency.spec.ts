/**
 * Two runs at once on one publish root: each download writes a temporary file of its own, the
 * repository lock is taken by one process at a time (a dead holder's lock by one waiter only),
 * and a sync waits for the holder, then fails naming it, leaving the published suite as it was.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import * as path from "node:path";
import { mirrorLockFile, syncMirror } from "../../../provider/apt/mirror";
import { LOCK_FILE } from "../../../provider/apt/publish_layout";
import { isAirgapError } from "../../../provider/errors";
import { downloadToFile } from "../../../provider/http/download";
import { type OnePackageSite, onePackageSite } from "../../harness/fixtures/aptsite";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { snapshotTree } from "../../harness/tree";

const layoutModule = path.resolve(__dirname, "../../../provider/apt/publish_layout.js");
const lockModule = path.resolve(__dirname, "../../../provider/store/lockfile.js");

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ["-e", "0"]);
    await new Promise((resolve) => child.on("exit", resolve));
    return child.pid!;
}

function exited(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("concurrent runs on one publish root", function () {
    this.timeout(180_000);

    after(() => cleanupAll());

    it("two downloads of one target write their own temporary files; both end verified", async () => {
        const body = randomBytes(3 << 20);
        const sha256 = createHash("sha256").update(body).digest("hex");
        let waiting: (() => void)[] = [];
        const halfSent = new Set<http.ServerResponse>();
        const server = http.createServer((_req, res) => {
            res.writeHead(200, { "content-length": body.length });
            res.write(body.subarray(0, body.length / 2), () => {
                halfSent.add(res);
                waiting.push(() => res.end(body.subarray(body.length / 2)));
            });
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.deb`;
        const dir = await makeTempDir("concurrent-download");
        const target = path.join(dir, "big.deb");
        try {
            const downloads = [0, 1].map(() =>
                downloadToFile(url, target, { expected: { size: body.length, sha256 } }),
            );
            for (let i = 0; i < 200 && halfSent.size < 2; i++) {
                await new Promise((resolve) => setTimeout(resolve, 25));
            }
            // Half of each body is on disk, each in its own file.
            await new Promise((resolve) => setTimeout(resolve, 200));
            const partials = fs.readdirSync(dir).filter((n) => n.startsWith(".big.deb.partial-"));
            assert.equal(partials.length, 2, `temporary files: ${fs.readdirSync(dir).join(", ")}`);
            for (const p of partials) {
                assert.match(p, new RegExp(`^\\.big\\.deb\\.partial-${process.pid}-[0-9a-f]{8}-[0-9a-z]+$`));
            }
            for (const finish of waiting) finish();
            waiting = [];
            await Promise.all(downloads);
            assert.equal(createHash("sha256").update(fs.readFileSync(target)).digest("hex"), sha256);
            assert.deepEqual(fs.readdirSync(dir), ["big.deb"]);
        } finally {
            for (const finish of waiting) finish();
            await new Promise((resolve) => server.close(resolve));
        }
    });

    it("a dead holder's lock is taken over by one waiter only: four processes never hold it at once", async () => {
        const repoDir = await makeTempDir("concurrent-lock");
        fs.writeFileSync(path.join(repoDir, LOCK_FILE), `${await deadPid()}@${hostname()}\n`);
        const log = path.join(repoDir, "log");
        const script = `
            const fs = require("node:fs");
            const { lockRepo } = require(${JSON.stringify(layoutModule)});
            (async () => {
                const lock = await lockRepo(${JSON.stringify(repoDir)}, 60000);
                fs.appendFileSync(${JSON.stringify(log)}, "in " + process.pid + " " + Date.now() + "\\n");
                await new Promise((r) => setTimeout(r, 300));
                fs.appendFileSync(${JSON.stringify(log)}, "out " + process.pid + " " + Date.now() + "\\n");
                await lock.release();
            })().catch((e) => { console.error(e); process.exit(1); });`;
        const children = [0, 1, 2, 3].map(() => spawn(process.execPath, ["-e", script], { stdio: "inherit" }));
        assert.deepEqual(await Promise.all(children.map(exited)), [0, 0, 0, 0]);
        const events = fs.readFileSync(log, "utf8").trim().split("\n");
        assert.equal(events.length, 8);
        // Strictly alternating: one holder in, the same holder out, and so on.
        for (let i = 0; i < events.length; i += 2) {
            const [kind, pid] = events[i]!.split(" ");
            const [nextKind, nextPid] = events[i + 1]!.split(" ");
            assert.deepEqual([kind, nextKind, nextPid], ["in", "out", pid], events.join("\n"));
        }
        assert.deepEqual(fs.readdirSync(repoDir).sort(), ["log"]);
    });

    describe("a sync while another process holds the repository", () => {
        let site: OnePackageSite;
        before(async () => {
            site = await onePackageSite();
        });
        after(() => site?.close());

        it("waits its bounded time, fails naming the holder, and leaves the published suite as it was; then takes over the dead holder's lock and goes through", async () => {
            const root = await makeTempDir("concurrent-sync");
            const spec = await site.spec(root, { origin: "site" });
            await syncMirror(spec);
            const published = snapshotTree(root, { identity: true });
            // Another run (a live process) holds the repository.
            const lockFile = mirrorLockFile(spec);
            const holder = spawn(
                process.execPath,
                [
                    "-e",
                    `require(${JSON.stringify(lockModule)}).takeLock(${JSON.stringify(lockFile)}, 5000)
                        .then(() => { console.log("held"); setTimeout(() => {}, 60000); });`,
                ],
                { stdio: ["ignore", "pipe", "inherit"] },
            );
            try {
                await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
                const started = Date.now();
                await assert.rejects(
                    syncMirror({ ...spec, publish: { ...spec.publish, origin: "other" } }, { lockTimeoutMs: 1500 }),
                    (err: Error) => {
                        assert.ok(isAirgapError(err) && err.code === "ERR_CONFLICT", String(err));
                        assert.match(err.message, new RegExp(`is held by ${holder.pid}@${hostname()}`));
                        return true;
                    },
                );
                assert.ok(Date.now() - started >= 1500, "it waited");
                assert.deepEqual(snapshotTree(root, { identity: true }), published);
            } finally {
                holder.kill("SIGKILL");
                await exited(holder);
            }
            // The holder died with its lock in place: the next sync takes it over and publishes.
            assert.ok(fs.existsSync(lockFile));
            const state = await syncMirror({ ...spec, publish: { ...spec.publish, origin: "other" } });
            assert.match(
                fs.readFileSync(path.join(state.publishedPath, "dists/bookworm/Release"), "utf8"),
                /^Origin: other$/m,
            );
            assert.ok(!fs.existsSync(lockFile));
        });
    });
});
