/**
 * A private Docker engine (Debian `docker.io`) for the tests that judge with real dockerd.
 *
 * dockerd runs as root with its data and exec roots, socket and pidfile under a temporary
 * directory, `--iptables=false --bridge=none` (containers use the host's network), in a private
 * mount namespace so that what it writes outside its roots (/etc/docker/key.json,
 * /run/docker/plugins, its managed containerd under /opt/containerd) stays off the machine.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { makeTempDir, removeTempDir } from "../tmp";
import { type ManagedProcess, run, startProcess, waitUntil } from "./process";

export interface DockerEngine {
    readonly socket: string;
    readonly process: ManagedProcess;
    /** Runs the docker client against this engine. */
    docker(
        args: string[],
        opts?: { input?: string | Buffer; check?: boolean; timeoutMs?: number },
    ): ReturnType<typeof run>;
    log(): string;
    stop(): Promise<void>;
}

export function dockerClient(): string {
    return fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";
}

/** Why the engine cannot run here, or undefined when it can. */
export function dockerUnavailable(): string | undefined {
    if (process.getuid?.() !== 0) return "dockerd needs root";
    for (const tool of ["/usr/sbin/dockerd", "/usr/bin/unshare"]) {
        if (!fs.existsSync(tool)) return `${tool} is missing (Debian package docker.io, util-linux)`;
    }
    return undefined;
}

/** Starts dockerd, with `configFile` as its daemon.json when given; resolves once it answers. */
export async function startDockerd(options: { configFile?: string } = {}): Promise<DockerEngine> {
    const dir = await makeTempDir("dockerd");
    const socket = path.join(dir, "d.sock");
    const privateDirs = [
        "mount -t tmpfs tmpfs /run",
        "mount -t tmpfs tmpfs /opt",
        "if [ -d /etc/docker ]; then mount -t tmpfs tmpfs /etc/docker; fi",
        'exec "$@"',
    ].join(" && ");
    const proc = startProcess(
        "unshare",
        [
            "-m",
            "sh",
            "-c",
            privateDirs,
            "sh",
            "dockerd",
            "--data-root",
            path.join(dir, "data"),
            "--exec-root",
            path.join(dir, "exec"),
            "-H",
            `unix://${socket}`,
            "--pidfile",
            path.join(dir, "docker.pid"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            ...(options.configFile === undefined ? [] : ["--config-file", options.configFile]),
        ],
        { name: "dockerd" },
    );
    const docker: DockerEngine["docker"] = (args, opts = {}) =>
        run(dockerClient(), ["-H", `unix://${socket}`, ...args], {
            check: opts.check ?? true,
            timeoutMs: opts.timeoutMs ?? 300_000,
            ...(opts.input === undefined ? {} : { input: opts.input }),
        });
    const stop = async () => {
        await proc.stop(20_000);
        await removeTempDir(dir);
    };
    try {
        await waitUntil(async () => (await docker(["version"], { check: false })).code === 0, {
            what: "dockerd to answer on its socket",
            process: proc,
            timeoutMs: 90_000,
            intervalMs: 200,
        });
    } catch (err) {
        await stop();
        throw err;
    }
    return { socket, process: proc, docker, log: () => proc.log(), stop };
}
