/** Bad SSH targets and reload commands: each refused before anything connects, naming its argument. */
import assert from "node:assert/strict";
import { utils } from "ssh2";
import { fingerprint, parseHostKey, shQuote, sshPlace } from "../../../provider/host/ssh";
import { placeOfTarget } from "../../../provider/host/target";
import type { HostMirrorSpec, SshTarget } from "../../../provider/host/types";
import { validateHostMirrorSpec } from "../../../provider/host/validate";

describe("HostMirrorConfig SSH target validation", () => {
    const client = utils.generateKeyPairSync("ed25519");
    const host = utils.generateKeyPairSync("ed25519");
    const hostKey = host.public.trim().split(/\s+/).slice(0, 2).join(" ");
    const good: SshTarget = { host: "node1.example", user: "deploy", privateKey: client.private, hostKey, root: "/" };
    const spec = (ssh: Partial<SshTarget> | Record<string, unknown>, more: Partial<HostMirrorSpec> = {}) =>
        ({
            name: "site",
            target: { ssh: { ...good, ...ssh } },
            registries: [{ source: "quay.io", mirrors: ["mirror.example:5000"] }],
            ...more,
        }) as HostMirrorSpec;

    it("accepts a good target, and a known_hosts line as the host key", async () => {
        assert.deepEqual(await validateHostMirrorSpec(spec({})), []);
        assert.deepEqual(
            await validateHostMirrorSpec(spec({ hostKey: `[node1.example]:2222 ${hostKey} comment`, port: 2222 })),
            [],
        );
    });

    const cases: [string, Record<string, unknown>, string, RegExp][] = [
        ["a missing user", { user: undefined }, "target.ssh.user", /is missing/],
        ["a user with a space", { user: "de ploy" }, "target.ssh.user", /not a user name/],
        ["a missing host", { host: undefined }, "target.ssh.host", /is missing/],
        ["a host with a scheme", { host: "ssh://node1" }, "target.ssh.host", /not a host name/],
        [
            "an absent host key",
            { hostKey: undefined },
            "target.ssh.hostKey",
            /is missing: pin the host's key.*never trusted/,
        ],
        ["a malformed host key", { hostKey: "ssh-ed25519 not-base64!" }, "target.ssh.hostKey", /is not a public key/],
        [
            "a host key of another type than it says",
            { hostKey: `ssh-rsa ${hostKey.split(" ")[1]}` },
            "target.ssh.hostKey",
            /is not a public key/,
        ],
        ["a relative root", { root: "srv/host" }, "target.ssh.root", /must be an absolute path/],
        ["port 0", { port: 0 }, "target.ssh.port", /not a port/],
        ["port 65536", { port: 65536 }, "target.ssh.port", /not a port/],
        ["a fractional port", { port: 22.5 }, "target.ssh.port", /not a port/],
        ["a public key as private key", { privateKey: client.public }, "target.ssh.privateKey", /not a private key/],
        [
            "a private key that does not parse",
            { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n" },
            "target.ssh.privateKey",
            /does not parse/,
        ],
        ["sudo that is not a boolean", { sudo: "yes" }, "target.ssh.sudo", /true or false/],
    ];
    for (const [title, change, argument, problem] of cases) {
        it(`rejects ${title}, naming ${argument}`, async () => {
            const problems = await validateHostMirrorSpec(spec(change));
            const mine = problems.filter((p) => p.argument === argument);
            assert.equal(mine.length, 1, JSON.stringify(problems));
            assert.match(mine[0]?.problem ?? "", problem);
            // The key's text never shows in a message.
            assert.ok(!JSON.stringify(problems).includes(client.private.split("\n")[1] as string));
        });
    }

    it("rejects a target that is both local and ssh, or neither", async () => {
        for (const target of [{ local: { root: "/" }, ssh: good }, {}]) {
            const problems = await validateHostMirrorSpec({ name: "site", target } as HostMirrorSpec);
            assert.deepEqual(
                problems.map((p) => p.argument),
                ["target"],
            );
        }
    });

    it("rejects reload commands without a command or with paths outside the root", async () => {
        const problems = await validateHostMirrorSpec(
            spec(
                {},
                {
                    reload: [
                        { command: "", after: [] },
                        {
                            command: "update-ca-certificates",
                            after: ["/etc/ssl", "../x", "usr/local/share/ca-certificates/a.crt"],
                        },
                    ],
                },
            ),
        );
        assert.deepEqual(
            problems.map((p) => p.argument),
            ["reload[0].command", "reload[1].after[0]", "reload[1].after[1]"],
        );
    });

    it("names an SSH target ssh://user@host:port/root, one spelling per place", () => {
        assert.equal(placeOfTarget(spec({ root: "/srv/x/../y/" })), "ssh://deploy@node1.example:22/srv/y");
        assert.equal(sshPlace({ host: "::1", port: 2222, user: "u" }), "ssh://u@[::1]:2222/");
    });

    it("parses known_hosts keys and prints OpenSSH fingerprints", () => {
        const parsed = parseHostKey(hostKey);
        assert.equal(parsed?.type, "ssh-ed25519");
        assert.match(fingerprint(parsed?.blob as Buffer), /^SHA256:[A-Za-z0-9+/]{43}$/);
        assert.equal(parseHostKey("ssh-ed25519"), undefined);
    });

    it("quotes shell arguments so that any byte passes as one word", () => {
        assert.equal(shQuote("a b'c$(x)"), `'a b'\\''c$(x)'`);
    });
});

describe("the SSH connection bound", () => {
    it("runs at most `limit` operations at once, and every one of them", async () => {
        const { Semaphore, maxConnections } = await import("../../../provider/host/operations");
        const bound = new Semaphore(3);
        let active = 0;
        let peak = 0;
        const done: number[] = [];
        await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
                bound.use(async () => {
                    active++;
                    peak = Math.max(peak, active);
                    await new Promise((r) => setTimeout(r, 5 + (i % 4)));
                    active--;
                    done.push(i);
                }),
            ),
        );
        assert.equal(peak, 3);
        assert.equal(done.length, 20);
        // A failing operation releases its slot too.
        await assert.rejects(
            bound.use(async () => Promise.reject(new Error("boom"))),
            /boom/,
        );
        await Promise.all([1, 2, 3].map(() => bound.use(async () => undefined)));
        assert.equal(maxConnections(), 16);
    });
});
