import assert from "node:assert/strict";
import { createServer } from "node:net";
import {
    freePort,
    isAddressInUse,
    run,
    startProcess,
    startWithFreePort,
    waitUntil,
} from "../../harness/servers/process";
import { startRegistry } from "../../harness/servers/registry";

describe("harness: processes", () => {
    it("run() returns output and reports failures with what the command printed", async () => {
        const ok = await run("sh", ["-c", "printf out; printf err >&2; cat"], { input: "-in" });
        assert.equal(ok.stdout, "out-in");
        assert.equal(ok.stderr, "err");
        await assert.rejects(run("sh", ["-c", "echo broken >&2; exit 3"]), /exit code 3[\s\S]*broken/);
        const unchecked = await run("sh", ["-c", "exit 4"], { check: false });
        assert.equal(unchecked.code, 4);
        await assert.rejects(run("/nonexistent/tool", []), /starting \/nonexistent\/tool/);
        await assert.rejects(run("sleep", ["10"], { timeoutMs: 100 }), /timed out after 100 ms/);
    });

    it("waitUntil() gives up with a clear message, and notices a process that exits", async () => {
        await assert.rejects(
            waitUntil(async () => false, { what: "nothing", timeoutMs: 100 }),
            /timed out after 100 ms waiting for nothing/,
        );
        const proc = startProcess("sh", ["-c", "echo dying words; exit 7"], { name: "shorty" });
        await assert.rejects(
            waitUntil(async () => false, { what: "shorty to be ready", process: proc, timeoutMs: 5000 }),
            /shorty exited \(exit code 7\) while waiting for shorty to be ready[\s\S]*dying words/,
        );
        const sleeper = startProcess("sleep", ["30"]);
        await sleeper.stop();
        assert.equal(sleeper.exit?.signal, "SIGTERM");
    });

    it("startWithFreePort() retries when the port was taken in the meantime", async () => {
        const blocker = createServer();
        await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
        const taken = (blocker.address() as { port: number }).port;
        let calls = 0;
        try {
            const port = await startWithFreePort(async (p) => {
                calls++;
                if (calls === 1) {
                    // act as if the first free port had been taken by someone else
                    throw new Error(`listen tcp 127.0.0.1:${taken}: bind: address already in use`);
                }
                return p;
            });
            assert.equal(calls, 2);
            assert.ok(port > 0);
        } finally {
            blocker.close();
        }
        assert.ok(isAddressInUse(new Error("outer", { cause: new Error("EADDRINUSE") })));
        assert.equal(isAddressInUse(new Error("other")), false);
        assert.ok((await freePort()) > 0);
    });

    it("a server that cannot start fails with its own log in the message", async function () {
        this.timeout(30_000);
        await assert.rejects(
            startRegistry({
                tls: {
                    dir: "/nonexistent",
                    caCertPath: "/nonexistent/ca.crt",
                    caKeyPath: "/nonexistent/ca.key",
                    caCertPem: "",
                    certPath: "/nonexistent/server.crt",
                    keyPath: "/nonexistent/server.key",
                    certPem: "",
                    keyPem: "",
                    certDir: "/nonexistent",
                    close: async () => {},
                },
            }),
            (e: Error) => {
                assert.match(e.message, /docker-registry exited[\s\S]*--- log ---[\s\S]*nonexistent/);
                return true;
            },
        );
    });
});
