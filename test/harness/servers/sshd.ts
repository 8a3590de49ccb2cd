import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { makeTempDir, removeTempDir } from "../tmp";
import { type ManagedProcess, run, startProcess, startWithFreePort, waitUntil } from "./process";

/**
 * An OpenSSH server (`/usr/sbin/sshd -D -e -f <config>`) on 127.0.0.1 for tests, running as the
 * current user, with a fresh host key and one authorized client key. Password logins are off.
 */

export const SSHD_BIN = "/usr/sbin/sshd";

export interface SshdOptions {
    /** Milliseconds to wait for the SSH banner. Defaults to 20 s. */
    readyTimeoutMs?: number;
    /** Extra `sshd_config` lines, appended as given. */
    extraConfig?: string[];
}

export interface SshServer {
    readonly host: "127.0.0.1";
    readonly port: number;
    /** The login user: the user running the tests. */
    readonly user: string;
    /** The client's private key (ed25519, no passphrase). */
    readonly privateKeyPath: string;
    readonly publicKey: string;
    /** The server's host public key, "ssh-ed25519 AAAA...". */
    readonly hostPublicKey: string;
    /** "[127.0.0.1]:PORT ssh-ed25519 AAAA...". */
    readonly knownHostsLine: string;
    /** A known_hosts file holding `knownHostsLine`. */
    readonly knownHostsPath: string;
    /** Options for `ssh` that log in non-interactively with strict host key checking. */
    sshArgs(): string[];
    /** sshd's own output so far. */
    log(): string;
    stop(): Promise<void>;
}

export async function startSshd(options: SshdOptions = {}): Promise<SshServer> {
    // sshd refuses to start without its privilege separation directory.
    await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    const dir = await makeTempDir("sshd");
    let proc: ManagedProcess | undefined;
    try {
        await chmod(dir, 0o700);
        const hostKeyPath = join(dir, "ssh_host_ed25519_key");
        const clientKeyPath = join(dir, "client_ed25519");
        await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "pulumi-airgap test host", "-f", hostKeyPath]);
        await run("ssh-keygen", [
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "pulumi-airgap test client",
            "-f",
            clientKeyPath,
        ]);
        const hostPublicKey = (await readFile(`${hostKeyPath}.pub`, "utf8")).trim().split(/\s+/).slice(0, 2).join(" ");
        const publicKey = (await readFile(`${clientKeyPath}.pub`, "utf8")).trim();
        const authorizedKeysPath = join(dir, "authorized_keys");
        await writeFile(authorizedKeysPath, `${publicKey}\n`, { mode: 0o600 });
        const user = userInfo().username;
        const knownHostsPath = join(dir, "known_hosts");

        const started = await startWithFreePort(async (port) => {
            const configPath = join(dir, "sshd_config");
            await writeFile(
                configPath,
                [
                    `Port ${port}`,
                    "ListenAddress 127.0.0.1",
                    `HostKey ${hostKeyPath}`,
                    `PidFile ${join(dir, "sshd.pid")}`,
                    `AuthorizedKeysFile ${authorizedKeysPath}`,
                    `AllowUsers ${user}`,
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PrintMotd no",
                    "UseDNS no",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    ...(options.extraConfig ?? []),
                    "",
                ].join("\n"),
            );
            const p = startProcess(SSHD_BIN, ["-D", "-e", "-f", configPath], { name: "sshd", cwd: dir });
            proc = p;
            try {
                // Only our own process's "Server listening" line proves the banner is its own
                // (another process may hold the port: then this one exits, and another port is tried).
                await waitUntil(
                    async () => p.log().includes(`listening on 127.0.0.1 port ${port}`) && readBanner(port),
                    {
                        what: `sshd to send its banner on 127.0.0.1:${port}`,
                        process: p,
                        timeoutMs: options.readyTimeoutMs ?? 20_000,
                    },
                );
            } catch (e) {
                await p.stop();
                proc = undefined;
                throw e;
            }
            return { port, proc: p };
        });

        const knownHostsLine = `[127.0.0.1]:${started.port} ${hostPublicKey}`;
        await writeFile(knownHostsPath, `${knownHostsLine}\n`);
        return {
            host: "127.0.0.1",
            port: started.port,
            user,
            privateKeyPath: clientKeyPath,
            publicKey,
            hostPublicKey,
            knownHostsLine,
            knownHostsPath,
            sshArgs: () => [
                "-F",
                "/dev/null",
                "-i",
                clientKeyPath,
                "-p",
                String(started.port),
                "-o",
                `UserKnownHostsFile=${knownHostsPath}`,
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ],
            log: () => started.proc.log(),
            async stop() {
                await started.proc.stop();
                await removeTempDir(dir);
            },
        };
    } catch (e) {
        await proc?.stop();
        await removeTempDir(dir);
        throw e;
    }
}

/** True once something on the port sends an SSH identification string. */
function readBanner(port: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port });
        let text = "";
        const timer = setTimeout(() => {
            socket.destroy();
            resolve(false);
        }, 2000);
        socket.on("data", (b: Buffer) => {
            text += b.toString("latin1");
            if (text.includes("\n")) {
                clearTimeout(timer);
                socket.destroy();
                resolve(text.startsWith("SSH-"));
            }
        });
        socket.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        socket.on("close", () => {
            clearTimeout(timer);
            resolve(false);
        });
    });
}
