/**
 * What the real-dockerd component tests run: a private Docker engine, and an nginx image made
 * from Debian packages of the machine's own archive.
 *
 * `nginxRootfs()` debootstraps the machine's Debian release (minbase) with nginx-light and packs
 * the tree into a tarball cached under `<repo>/.cache/nginx-rootfs/` (built beside, renamed into
 * place), for `docker import`. The archive's host name is never written: the build's APT
 * sources, lists, caches and logs are removed, and the tree's configuration and state
 * directories are searched for it before packing.
 *
 * `startDockerd()` runs dockerd as root with private data and exec roots, socket and pidfile
 * under a temporary directory, `--iptables=false --bridge=none` (containers use the host's
 * network), in a private mount namespace so that what it writes outside its roots (/run, /opt,
 * /etc/docker) stays off the machine.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { systemAptSources } from "../../../provider/apt/system";
import { packageRoot } from "../../harness/program";
import { run, startProcess, waitUntil } from "../../harness/servers/process";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

/** Bump when the way the tree is made changes: it is part of the cache key. */
const ROOTFS_VERSION = 1;

export interface DockerEngine {
    readonly socket: string;
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

export async function startDockerd(): Promise<DockerEngine> {
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
    return { socket, docker, log: () => proc.log(), stop };
}

interface Plan {
    suite: string;
    uri: string;
    keyring?: string;
}

function planArchive(): Plan | string {
    for (const s of systemAptSources()) {
        const suite = s.suites.find((x) => /^[a-z]+$/.test(x) && !["sid", "unstable", "experimental"].includes(x));
        if (suite !== undefined && s.components.includes("main") && /^https?:\/\//.test(s.uri)) {
            return { suite, uri: s.uri, keyring: s.signedBy };
        }
    }
    return "the machine's APT sources name no Debian release suite with component main";
}

/**
 * The cached rootfs tarball with nginx-light (built on first use), or a string saying why it
 * cannot be built here.
 */
export async function nginxRootfs(
    log: (line: string) => void = () => {},
): Promise<{ tarball: string; key: string } | string> {
    const plan = planArchive();
    if (typeof plan === "string") return plan;
    const key = createHash("sha256")
        .update(JSON.stringify({ suite: plan.suite, include: ["nginx-light"], v: ROOTFS_VERSION }))
        .digest("hex")
        .slice(0, 16);
    const cacheDir = path.join(packageRoot, ".cache", "nginx-rootfs");
    const tarball = path.join(cacheDir, `${plan.suite}-nginx-light-${key}.tar`);
    if (fs.existsSync(tarball)) {
        log(`cached ${tarball}`);
        return { tarball, key };
    }
    if (process.getuid?.() !== 0) return "debootstrap needs root";
    if (!fs.existsSync("/usr/sbin/debootstrap")) return "debootstrap is missing";
    fs.mkdirSync(cacheDir, { recursive: true });
    const work = path.join(cacheDir, `.build-${key}-${process.pid}-${randomBytes(4).toString("hex")}`);
    const root = path.join(work, "root");
    const t0 = Date.now();
    try {
        fs.mkdirSync(root, { recursive: true });
        await run(
            "debootstrap",
            [
                "--variant=minbase",
                "--components=main",
                "--include=nginx-light",
                ...(plan.keyring !== undefined ? [`--keyring=${plan.keyring}`] : []),
                plan.suite,
                root,
                plan.uri,
            ],
            { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" }, timeoutMs: 1_800_000 },
        );
        for (const p of [
            "etc/apt/sources.list",
            "var/lib/apt/lists",
            "var/cache/apt",
            "var/log/apt",
            "var/log/bootstrap.log",
        ]) {
            fs.rmSync(path.join(root, p), { recursive: true, force: true });
        }
        fs.mkdirSync(path.join(root, "var/lib/apt/lists/partial"), { recursive: true });
        fs.mkdirSync(path.join(root, "var/cache/apt/archives/partial"), { recursive: true });
        fs.writeFileSync(path.join(root, "etc/apt/sources.list"), "# No sources.\n");
        const host = new URL(plan.uri).hostname;
        const found = await run(
            "grep",
            ["-rlF", "--", host, ...["etc", "var", "root", "tmp"].map((d) => path.join(root, d))],
            {
                check: false,
                timeoutMs: 300_000,
            },
        );
        const hits = found.stdout.split("\n").filter(Boolean);
        if (hits.length > 0) {
            throw new Error(
                `the rootfs still names the archive host in: ${hits.map((h) => path.relative(root, h)).join(", ")}`,
            );
        }
        const partial = path.join(work, "rootfs.tar");
        await run("tar", ["-C", root, "--numeric-owner", "-cf", partial, "."], { timeoutMs: 600_000 });
        fs.renameSync(partial, tarball);
        log(`built ${tarball} in ${Date.now() - t0} ms`);
        return { tarball, key };
    } finally {
        await run("rm", ["-rf", "--one-file-system", work], { check: false, timeoutMs: 600_000 });
    }
}
