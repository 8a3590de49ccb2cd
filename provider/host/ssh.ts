/**
 * The SSH transport: one connection (the `ssh2` client) per host per operation, SFTP and exec
 * over it.
 *
 * - The host key is pinned: the key the server presents MUST equal `hostKey` (known_hosts
 *   form); there is no trust on first use. A mismatch names both fingerprints.
 * - Without sudo, files are handled over SFTP as the login user; with sudo, over exec through
 *   `sudo -n sh -c '…'` (SFTP would run as the user), each argument quoted, data on stdin, the
 *   temporary file written in the target's directory and renamed with `mv` (owner root).
 * - Once the connection is lost every call fails at once (ERR_NETWORK, naming the host): nothing
 *   waits for a peer that is gone.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import type { ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import { AirgapError } from "../errors";
import { tempPathBeside } from "../store/atomic";
import { type FileStat, type HostTransport, type RunResult, resolveUnder, tail } from "./transport";
import type { SshTarget } from "./types";

/** What reaching a host over SSH takes: the SSH target of a host's configuration. */
export type SshTargetOptions = SshTarget;

/** "ssh://user@host:port/root": how a target is named in ids, claims and messages. */
export function sshPlace(o: Pick<SshTargetOptions, "host" | "port" | "user" | "root">): string {
    const host = o.host.includes(":") && !o.host.startsWith("[") ? `[${o.host}]` : o.host;
    const root = path.posix.resolve("/", o.root ?? "/");
    return `ssh://${o.user}@${host}:${o.port ?? 22}${root}`;
}

/** The key type and blob of a known_hosts-style key ("[host]:port ssh-ed25519 AAAA… comment" or "ssh-ed25519 AAAA…"). */
export function parseHostKey(text: string): { type: string; blob: Buffer } | undefined {
    const fields = text.trim().split(/\s+/);
    const at = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
    if (at < 0 || fields[at + 1] === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(fields[at + 1] ?? "")) {
        return undefined;
    }
    const type = fields[at] as string;
    const blob = Buffer.from(fields[at + 1] as string, "base64");
    // The blob starts with its own type name: a key pasted under the wrong type is malformed.
    const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (nameLength < 0 || blob.subarray(4, 4 + nameLength).toString("latin1") !== type) {
        return undefined;
    }
    return { type, blob };
}

/** OpenSSH's fingerprint of a key blob: "SHA256:…" (base64, no padding). */
export function fingerprint(blob: Buffer): string {
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The host key algorithms that make a server present a key of `type`. */
function hostKeyAlgorithms(type: string): string[] {
    return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/** `s` quoted for a POSIX shell. */
export function shQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

export class SshTransport implements HostTransport {
    readonly where: string;
    private readonly root: string;
    private lost: Error | undefined;
    private sftpChannel: SFTPWrapper | undefined;
    private rootShell: RootShell | undefined;

    private constructor(
        private readonly client: import("ssh2").Client,
        private readonly options: SshTargetOptions,
    ) {
        this.where = sshPlace(options);
        this.root = path.posix.resolve("/", options.root ?? "/");
        client.on("close", () => {
            this.lost ??= new Error("the connection closed");
        });
        client.on("error", (err) => {
            this.lost ??= err;
        });
    }

    /** Connects and authenticates; errors name host:port and what failed. */
    static async connect(options: SshTargetOptions): Promise<SshTransport> {
        const { Client } = await import("ssh2");
        const port = options.port ?? 22;
        const hostPort = `${options.host}:${port}`;
        const pinned = parseHostKey(options.hostKey);
        if (!pinned) {
            throw new AirgapError(
                "ERR_INVALID_ARGUMENT",
                `target.ssh.hostKey: is not a public key such as "ssh-ed25519 AAAA…"`,
                { argument: "target.ssh.hostKey" },
            );
        }
        const timeoutMs = options.connectTimeoutMs ?? 10_000;
        const client = new Client();
        let presented: Buffer | undefined;
        const config: ConnectConfig = {
            host: options.host,
            port,
            username: options.user,
            privateKey: options.privateKey,
            readyTimeout: timeoutMs,
            algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) as never },
            hostVerifier: (key: Buffer) => {
                presented = Buffer.from(key);
                return presented.equals(pinned.blob);
            },
        };
        await new Promise<void>((resolve, reject) => {
            let settled = false;
            // ssh2's readyTimeout starts once the TCP connection is up: bound the whole of it.
            const timer = setTimeout(() => {
                fail(
                    new AirgapError(
                        "ERR_NETWORK",
                        `ssh ${hostPort}: no SSH connection within ${timeoutMs} ms (host unreachable or not answering)`,
                    ),
                );
            }, timeoutMs);
            const fail = (err: AirgapError) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                client.end();
                client.destroy();
                reject(err);
            };
            client.once("ready", () => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                resolve();
            });
            // `on`, not `once`: ssh2 may report more than one error for one failed connection.
            client.on("error", (err: Error & { level?: string; code?: string }) => {
                if (presented && !presented.equals(pinned.blob)) {
                    fail(
                        new AirgapError(
                            "ERR_VERIFICATION",
                            `ssh ${hostPort}: host key mismatch: expected ${pinned.type} ${fingerprint(pinned.blob)} ` +
                                `(target.ssh.hostKey), the host presented ${fingerprint(presented)}. ` +
                                "Nothing was sent; check the host, or update hostKey if its key was changed on purpose",
                        ),
                    );
                } else if (err.level === "client-authentication") {
                    fail(
                        new AirgapError(
                            "ERR_AUTH",
                            `ssh ${hostPort}: authentication as "${options.user}" failed: the host refused the key in target.ssh.privateKey`,
                            { cause: err },
                        ),
                    );
                } else if (err.level === "client-timeout") {
                    fail(
                        new AirgapError("ERR_NETWORK", `ssh ${hostPort}: no SSH handshake within ${timeoutMs} ms`, {
                            cause: err,
                        }),
                    );
                } else if (/privateKey|private key|Cannot parse/i.test(err.message)) {
                    fail(
                        new AirgapError(
                            "ERR_INVALID_ARGUMENT",
                            `target.ssh.privateKey: ${err.message} (for ${hostPort})`,
                            { argument: "target.ssh.privateKey", cause: err },
                        ),
                    );
                } else {
                    fail(
                        new AirgapError("ERR_NETWORK", `ssh ${hostPort}: cannot connect: ${err.message}`, {
                            cause: err,
                        }),
                    );
                }
            });
            try {
                client.connect(config);
            } catch (err) {
                fail(
                    new AirgapError(
                        "ERR_INVALID_ARGUMENT",
                        `target.ssh.privateKey: ${(err as Error).message} (for ${hostPort})`,
                        { argument: "target.ssh.privateKey", cause: err },
                    ),
                );
            }
        });
        return new SshTransport(client, options);
    }

    /** Cuts the connection without a goodbye, as a network failure would. For fault tests. */
    drop(): void {
        this.lost ??= new Error("the connection was dropped");
        this.client.destroy();
    }

    async close(): Promise<void> {
        this.client.end();
    }

    private full(rel: string): string {
        return resolveUnder(this.root, rel, this.where);
    }

    private check(): void {
        if (this.lost) {
            throw new AirgapError("ERR_NETWORK", `${this.where}: connection lost: ${this.lost.message}`, {
                cause: this.lost,
            });
        }
    }

    private failure(what: string, file: string, err: Error & { code?: unknown }): AirgapError {
        if (this.lost) {
            return new AirgapError(
                "ERR_NETWORK",
                `${this.where}: connection lost while ${what} ${file}: ${this.lost.message}`,
                { cause: err },
            );
        }
        const reason = err.code === SFTP_PERMISSION_DENIED ? "permission denied" : err.message;
        return new AirgapError("ERR_IO", `${this.where}: ${what} ${file}: ${reason}`, { cause: err });
    }

    private sftp(): Promise<SFTPWrapper> {
        this.check();
        if (this.sftpChannel) return Promise.resolve(this.sftpChannel);
        return new Promise((resolve, reject) => {
            this.client.sftp((err, sftp) => {
                if (err) {
                    reject(this.failure("opening SFTP for", this.root, err));
                    return;
                }
                this.sftpChannel = sftp;
                resolve(sftp);
            });
        });
    }

    /** Calls an SFTP method; rejects with an error naming the host and `file`. */
    private async call<T>(
        what: string,
        file: string,
        f: (sftp: SFTPWrapper, cb: (err: Error | undefined | null, v?: T) => void) => void,
    ): Promise<T> {
        const sftp = await this.sftp();
        this.check();
        return new Promise<T>((resolve, reject) => {
            f(sftp, (err, v) => (err ? reject(this.failure(what, file, err)) : resolve(v as T)));
        });
    }

    private static missing(err: unknown): boolean {
        const cause = (err as { cause?: { code?: unknown } }).cause;
        return cause?.code === SFTP_NO_SUCH_FILE;
    }

    /** Runs `script` with `args` ($1, $2, …) as root through `sudo -n sh -c`, `input` on stdin. */
    private async sudo(
        script: string,
        args: string[],
        input?: Buffer,
    ): Promise<{ code: number; stdout: Buffer; stderr: string }> {
        this.rootShell ??= new RootShell(this);
        return this.rootShell.request(script, args, input);
    }

    /** Opens an exec channel (for the root shell). */
    openChannel(command: string): Promise<ClientChannel> {
        this.check();
        return new Promise((resolve, reject) => {
            this.client.exec(command, (err, channel) =>
                err ? reject(this.failure("running a command on", this.root, err)) : resolve(channel),
            );
        });
    }

    lostError(what: string): AirgapError | undefined {
        return this.lost
            ? new AirgapError("ERR_NETWORK", `${this.where}: connection lost while ${what}: ${this.lost.message}`)
            : undefined;
    }

    private exec(command: string, input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
        this.check();
        return new Promise((resolve, reject) => {
            this.client.exec(command, (err, channel: ClientChannel) => {
                if (err) {
                    reject(this.failure("running a command on", this.root, err));
                    return;
                }
                const out: Buffer[] = [];
                const errs: Buffer[] = [];
                let code: number | null = null;
                channel.on("data", (b: Buffer) => out.push(b));
                channel.stderr.on("data", (b: Buffer) => errs.push(b));
                channel.on("exit", (c: number | null, signal?: string) => {
                    code = c ?? (signal ? 128 : 255);
                });
                channel.on("close", () => {
                    if (code === null && this.lost) {
                        reject(
                            new AirgapError(
                                "ERR_NETWORK",
                                `${this.where}: connection lost while running a command: ${this.lost.message}`,
                            ),
                        );
                        return;
                    }
                    resolve({
                        code: code ?? 255,
                        stdout: Buffer.concat(out),
                        stderr: Buffer.concat(errs).toString("utf8"),
                    });
                });
                channel.end(input);
            });
        });
    }

    private async sudoOk(what: string, file: string, script: string, args: string[], input?: Buffer): Promise<Buffer> {
        const r = await this.sudo(script, args, input);
        if (r.code !== 0) {
            const reason = /permission denied/i.test(r.stderr)
                ? `permission denied (${tail(r.stderr, 300)})`
                : /a password is required|sudo: /i.test(r.stderr)
                  ? `sudo -n refused (${tail(r.stderr, 300)}): target.ssh.sudo needs passwordless sudo for "${this.options.user}"`
                  : `exit ${r.code}: ${tail(r.stderr, 300)}`;
            throw new AirgapError("ERR_IO", `${this.where}: ${what} ${file}: ${reason}`);
        }
        return r.stdout;
    }

    async exists(rel: string): Promise<boolean> {
        return (await this.stat(rel)) !== undefined;
    }

    async stat(rel: string): Promise<FileStat | undefined> {
        const file = this.full(rel);
        if (this.options.sudo) {
            const out = (
                await this.sudoOk(
                    "reading",
                    file,
                    'if [ -e "$1" ] || [ -L "$1" ]; then stat -c "%a %u %g %F" -- "$1"; else echo missing; fi',
                    [file],
                )
            ).toString("utf8");
            if (out.trim() === "missing") return undefined;
            const [mode, uid, gid, ...type] = out.trim().split(" ");
            return {
                mode: Number.parseInt(mode ?? "0", 8),
                uid: Number(uid),
                gid: Number(gid),
                isDirectory: type.join(" ") === "directory",
            };
        }
        try {
            const s = await this.call<import("ssh2").Stats>("reading", file, (sftp, cb) => sftp.lstat(file, cb));
            return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, isDirectory: s.isDirectory() };
        } catch (err) {
            if (SshTransport.missing(err)) return undefined;
            throw err;
        }
    }

    async readFile(rel: string): Promise<Buffer | undefined> {
        const file = this.full(rel);
        if (this.options.sudo) {
            const r = await this.sudo('[ -e "$1" ] || exit 3; cat -- "$1"', [file]);
            if (r.code === 3) return undefined;
            if (r.code !== 0) {
                throw new AirgapError(
                    "ERR_IO",
                    `${this.where}: reading ${file}: exit ${r.code}: ${tail(r.stderr, 300)}`,
                );
            }
            return r.stdout;
        }
        try {
            return await this.call<Buffer>("reading", file, (sftp, cb) => sftp.readFile(file, cb));
        } catch (err) {
            if (SshTransport.missing(err)) return undefined;
            throw err;
        }
    }

    async writeFileAtomic(rel: string, data: string | Buffer, mode: number): Promise<void> {
        const file = this.full(rel);
        const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data, "utf8");
        const octal = (mode & 0o7777).toString(8);
        if (this.options.sudo) {
            await this.sudoOk(
                "writing",
                file,
                [
                    "set -e",
                    'd=$(dirname -- "$1")',
                    'mkdir -p -- "$d"',
                    't=$(mktemp -- "$d/.$(basename -- "$1").tmp-XXXXXX")',
                    `trap 'rm -f -- "$t"' EXIT`,
                    'cat > "$t"',
                    'sync -- "$t" 2>/dev/null || sync',
                    'chmod "$2" -- "$t"',
                    'chown 0:0 -- "$t"',
                    'mv -f -- "$t" "$1"',
                    "trap - EXIT",
                ].join("\n"),
                [file, octal],
                bytes,
            );
            return;
        }
        await this.mkdir(path.posix.relative(this.root, path.posix.dirname(file)) || ".");
        const tmp = tempPathBeside(file);
        const sftp = await this.sftp();
        const handle = await this.call<Buffer>("writing", file, (s, cb) => s.open(tmp, "wx", { mode }, cb));
        try {
            await this.call<void>("writing", file, (s, cb) =>
                s.write(handle, bytes, 0, bytes.length, 0, (err) => cb(err)),
            );
            await this.call<void>("writing", file, (s, cb) => s.ext_openssh_fsync(handle, (err) => cb(err)));
            await this.call<void>("writing", file, (s, cb) => s.close(handle, cb));
            await this.call<void>("writing", file, (s, cb) => s.chmod(tmp, mode, cb));
            // posix-rename@openssh.com replaces the target; plain SFTP rename refuses to.
            await this.call<void>("writing", file, (s, cb) => s.ext_openssh_rename(tmp, file, cb));
        } catch (err) {
            if (!this.lost) {
                await new Promise<void>((resolve) => sftp.unlink(tmp, () => resolve()));
            }
            throw err;
        }
    }

    async copy(from: string, to: string): Promise<void> {
        const source = this.full(from);
        if (this.options.sudo) {
            const target = this.full(to);
            await this.sudoOk(
                "copying",
                `${source} to ${target}`,
                [
                    "set -e",
                    'd=$(dirname -- "$2")',
                    'mkdir -p -- "$d"',
                    't=$(mktemp -- "$d/.$(basename -- "$2").tmp-XXXXXX")',
                    `trap 'rm -f -- "$t"' EXIT`,
                    'cp -p -- "$1" "$t"',
                    'sync -- "$t" 2>/dev/null || sync',
                    'mv -f -- "$t" "$2"',
                    "trap - EXIT",
                ].join("\n"),
                [source, target],
            );
            return;
        }
        const data = await this.readFile(from);
        const s = await this.stat(from);
        if (data === undefined || s === undefined) {
            throw new AirgapError("ERR_IO", `${this.where}: copying ${source}: it does not exist`);
        }
        await this.writeFileAtomic(to, data, s.mode);
    }

    async rm(rel: string): Promise<void> {
        const file = this.full(rel);
        if (this.options.sudo) {
            await this.sudoOk("removing", file, 'rm -f -- "$1"', [file]);
            return;
        }
        try {
            await this.call<void>("removing", file, (sftp, cb) => sftp.unlink(file, cb));
        } catch (err) {
            if (!SshTransport.missing(err)) throw err;
        }
    }

    async rmdir(rel: string): Promise<void> {
        const dir = this.full(rel);
        if (this.options.sudo) {
            await this.sudoOk("removing", dir, 'rmdir -- "$1"', [dir]);
            return;
        }
        await this.call<void>("removing", dir, (sftp, cb) => sftp.rmdir(dir, cb));
    }

    async mkdir(rel: string): Promise<void> {
        const dir = this.full(rel);
        if (this.options.sudo) {
            await this.sudoOk("creating", dir, 'mkdir -p -- "$1"', [dir]);
            return;
        }
        const missing: string[] = [];
        // The root itself must exist (validation and the first stat say so when it does not).
        for (let d = dir; d !== this.root && d !== "/"; d = path.posix.dirname(d)) {
            if (await this.stat(path.posix.relative(this.root, d))) break;
            missing.unshift(d);
        }
        for (const d of missing) {
            await this.call<void>("creating", d, (sftp, cb) => sftp.mkdir(d, { mode: 0o755 }, cb));
        }
    }

    async list(rel: string): Promise<string[] | undefined> {
        const dir = this.full(rel);
        if (this.options.sudo) {
            const r = await this.sudo(
                '[ -d "$1" ] || exit 3; cd -- "$1" && for f in * .*; do [ -e "$f" ] && [ "$f" != . ] && [ "$f" != .. ] && printf "%s\\n" "$f"; done; true',
                [dir],
            );
            if (r.code === 3) return undefined;
            if (r.code !== 0) {
                throw new AirgapError(
                    "ERR_IO",
                    `${this.where}: listing ${dir}: exit ${r.code}: ${tail(r.stderr, 300)}`,
                );
            }
            return r.stdout
                .toString("utf8")
                .split("\n")
                .filter((n) => n !== "")
                .sort();
        }
        try {
            const entries = await this.call<import("ssh2").FileEntry[]>("listing", dir, (sftp, cb) =>
                sftp.readdir(dir, cb),
            );
            return entries
                .map((e) => e.filename)
                .filter((n) => n !== "." && n !== "..")
                .sort();
        } catch (err) {
            if (SshTransport.missing(err)) return undefined;
            throw err;
        }
    }

    async run(command: string): Promise<RunResult> {
        const r = this.options.sudo ? await this.sudo(command, []) : await this.exec(command);
        return { code: r.code, stdout: r.stdout.toString("utf8"), stderr: r.stderr };
    }
}

/**
 * One `sudo -n sh` per connection, fed one request at a time: starting a process per file
 * operation costs an exec round trip each (a channel, a fork, sudo), which dominates with many
 * small files. Each request runs in a subshell with its arguments as $1…, its input decoded from
 * base64, its output and error output captured in root-only temporary files and sent back in
 * base64 between markers, so that no byte of a file can be taken for the protocol.
 */
class RootShell {
    private channel: Promise<ClientChannel> | undefined;
    private queue: Promise<unknown> = Promise.resolve();
    private buffer = "";
    private stderr = "";
    private closed = false;
    private waiter: (() => void) | undefined;
    private seq = 0;

    constructor(private readonly ssh: SshTransport) {}

    private open(): Promise<ClientChannel> {
        this.channel ??= this.ssh.openChannel("sudo -n sh").then((ch) => {
            ch.on("data", (b: Buffer) => {
                this.buffer += b.toString("latin1");
                this.waiter?.();
            });
            ch.stderr.on("data", (b: Buffer) => {
                this.stderr += b.toString("utf8");
            });
            ch.on("close", () => {
                this.closed = true;
                this.waiter?.();
            });
            return ch;
        });
        return this.channel;
    }

    request(script: string, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
        const next = this.queue.then(() => this.send(script, args, input));
        this.queue = next.catch(() => undefined);
        return next;
    }

    private async send(
        script: string,
        args: string[],
        input?: Buffer,
    ): Promise<{ code: number; stdout: Buffer; stderr: string }> {
        const ch = await this.open();
        const id = `${process.pid}_${++this.seq}_${Date.now()}`;
        const feed = input === undefined ? "</dev/null" : "";
        const pipe = input === undefined ? "" : `printf '%s' '${input.toString("base64")}' | base64 -d | `;
        const text = [
            "__o=$(mktemp) && __e=$(mktemp) || exit 1",
            `${pipe}( set -- ${args.map(shQuote).join(" ")}`,
            script,
            `) ${feed} >"$__o" 2>"$__e"`,
            `__c=$?; printf '\\n__AIRGAP_%s %s ' '${id}' "$__c"; base64 -w0 <"$__o"; printf ' '; base64 -w0 <"$__e"; printf ' __AIRGAP_END\\n'; rm -f "$__o" "$__e"`,
            "",
        ].join("\n");
        ch.write(text);
        const pattern = new RegExp(`\\n__AIRGAP_${id} (\\d+) ([A-Za-z0-9+/=]*) ([A-Za-z0-9+/=]*) __AIRGAP_END\\n`);
        for (;;) {
            const m = pattern.exec(this.buffer);
            if (m) {
                this.buffer = this.buffer.slice((m.index ?? 0) + m[0].length);
                return {
                    code: Number(m[1]),
                    stdout: Buffer.from(m[2] ?? "", "base64"),
                    stderr: Buffer.from(m[3] ?? "", "base64").toString("utf8"),
                };
            }
            if (this.closed) {
                const lost = this.ssh.lostError("running a command");
                if (lost) throw lost;
                // sudo refused (a password is required) or the shell ended: what it said is the reason.
                return { code: 255, stdout: Buffer.alloc(0), stderr: this.stderr || "sudo -n sh ended" };
            }
            await new Promise<void>((resolve) => {
                this.waiter = resolve;
            });
            this.waiter = undefined;
        }
    }
}
