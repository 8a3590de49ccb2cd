/**
 * Transports: where a host's files are read and written. The applier (apply.ts) only sees this
 * interface; `LocalTransport` works on a directory of this machine, `SshTransport` (ssh.ts) on a
 * directory of another host over one SSH connection.
 *
 * Contract for every implementation:
 * - paths are relative to the transport's root, "/"-separated; a path that leaves the root MUST be
 *   refused (ERR_INVALID_ARGUMENT);
 * - `writeFileAtomic` MUST write a temporary file in the same directory, flush it to the disk, set
 *   its mode and rename it over the target: a reader sees the old file or the new one, never a
 *   partial write; missing parent directories are created;
 * - errors name the host (`where`) and the path;
 * - `close` MUST be called once the operation is done (one connection per host per operation).
 */
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { AirgapError } from "../errors";
import { writeFileAtomic as writeLocalAtomic } from "../store/atomic";

export interface FileStat {
    /** Permission bits (mode & 0o7777). */
    mode: number;
    uid: number;
    gid: number;
    isDirectory: boolean;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface HostTransport {
    /** The host and root, for messages: "/srv/root" or "ssh://user@host:22/". */
    readonly where: string;
    exists(rel: string): Promise<boolean>;
    /** undefined when nothing is at `rel`. */
    stat(rel: string): Promise<FileStat | undefined>;
    /** The file's bytes, or undefined when it does not exist. */
    readFile(rel: string): Promise<Buffer | undefined>;
    writeFileAtomic(rel: string, data: string | Buffer, mode: number): Promise<void>;
    /** Copies `from` to `to` atomically, keeping its mode. */
    copy(from: string, to: string): Promise<void>;
    /** Removes a file; nothing when it is missing. */
    rm(rel: string): Promise<void>;
    /** Removes an empty directory; fails when it is not empty. */
    rmdir(rel: string): Promise<void>;
    /** Creates a directory and its missing parents. */
    mkdir(rel: string): Promise<void>;
    /** The names in a directory, sorted; undefined when it does not exist. */
    list(rel: string): Promise<string[] | undefined>;
    /** Runs a shell command on the host (`/bin/sh -c`), in no particular directory. */
    run(command: string): Promise<RunResult>;
    close(): Promise<void>;
}

/** `rel` as a "/"-separated path under `root`; refuses one that leaves it. */
export function resolveUnder(root: string, rel: string, where = root): string {
    const full = path.posix.resolve(root, rel);
    const base = path.posix.resolve(root);
    if (full !== base && !full.startsWith(base === "/" ? "/" : `${base}/`)) {
        throw new AirgapError("ERR_INVALID_ARGUMENT", `${where}: path "${rel}" leaves the root ${root}`);
    }
    return full;
}

/** The last `max` characters of a command's error output, for messages. */
export function tail(text: string, max = 600): string {
    const t = text.trim();
    return t.length > max ? `…${t.slice(t.length - max)}` : t;
}

function ioError(where: string, what: string, file: string, cause: unknown): AirgapError {
    const code = (cause as NodeJS.ErrnoException)?.code;
    const reason =
        code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : cause instanceof Error
              ? cause.message
              : String(cause);
    return new AirgapError("ERR_IO", `${where}: ${what} ${file}: ${reason}`, { cause });
}

/** The local host: files under a directory of this machine. */
export class LocalTransport implements HostTransport {
    readonly where: string;

    constructor(readonly root: string) {
        this.where = root;
    }

    private full(rel: string): string {
        return resolveUnder(this.root, rel);
    }

    async exists(rel: string): Promise<boolean> {
        return (await this.stat(rel)) !== undefined;
    }

    async stat(rel: string): Promise<FileStat | undefined> {
        const file = this.full(rel);
        try {
            const s = await fsp.lstat(file);
            return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, isDirectory: s.isDirectory() };
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
            throw ioError(this.where, "reading", file, err);
        }
    }

    async readFile(rel: string): Promise<Buffer | undefined> {
        const file = this.full(rel);
        try {
            return await fsp.readFile(file);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
            throw ioError(this.where, "reading", file, err);
        }
    }

    async writeFileAtomic(rel: string, data: string | Buffer, mode: number): Promise<void> {
        const file = this.full(rel);
        try {
            writeLocalAtomic(file, data, mode);
        } catch (err) {
            throw ioError(this.where, "writing", file, err);
        }
    }

    async copy(from: string, to: string): Promise<void> {
        const source = this.full(from);
        const data = await this.readFile(from);
        const s = await this.stat(from);
        if (data === undefined || s === undefined) {
            throw new AirgapError("ERR_IO", `${this.where}: copying ${source}: it does not exist`);
        }
        await this.writeFileAtomic(to, data, s.mode);
    }

    async rm(rel: string): Promise<void> {
        const file = this.full(rel);
        try {
            await fsp.rm(file, { force: true });
        } catch (err) {
            throw ioError(this.where, "removing", file, err);
        }
    }

    async rmdir(rel: string): Promise<void> {
        await fsp.rmdir(this.full(rel));
    }

    async mkdir(rel: string): Promise<void> {
        const dir = this.full(rel);
        try {
            await fsp.mkdir(dir, { recursive: true });
        } catch (err) {
            throw ioError(this.where, "creating", dir, err);
        }
    }

    async list(rel: string): Promise<string[] | undefined> {
        const dir = this.full(rel);
        try {
            return (await fsp.readdir(dir)).sort();
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
            throw ioError(this.where, "listing", dir, err);
        }
    }

    run(command: string): Promise<RunResult> {
        return new Promise((resolve) => {
            execFile(
                "/bin/sh",
                ["-c", command],
                { maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
                (err, stdout, stderr) => {
                    const code = err ? (typeof err.code === "number" ? err.code : 127) : 0;
                    resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
                },
            );
        });
    }

    async close(): Promise<void> {}
}
