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
 * The private Docker engine is `startDockerd()` of test/harness/servers/dockerd.ts.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { systemAptSources } from "../../../provider/apt/system";
import { packageRoot } from "../../harness/program";
import { run } from "../../harness/servers/process";
import { makeTempDir } from "../../harness/tmp";

/** Bump when the way the tree is made changes: it is part of the cache key. */
const ROOTFS_VERSION = 1;

export { type DockerEngine, dockerClient, dockerUnavailable, startDockerd } from "../../harness/servers/dockerd";

/** The inputs of a declared docker.Container, as the Docker provider receives them. */
// biome-ignore lint/suspicious/noExplicitAny: the recorded inputs are whatever the component declared.
export type ContainerSpec = Record<string, any>;

/** `docker create` arguments for a docker.Container spec (the inputs the provider receives). */
export function createArgs(spec: ContainerSpec): string[] {
    const args = ["create", "--name", spec.name];
    if (spec.networkMode !== undefined) args.push("--network", spec.networkMode);
    if (spec.restart !== undefined) args.push("--restart", spec.restart);
    for (const l of spec.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
    for (const e of spec.envs ?? []) args.push("--env", e);
    for (const v of spec.volumes ?? []) {
        args.push("--volume", `${v.hostPath}:${v.containerPath}${v.readOnly ? ":ro" : ""}`);
    }
    for (const p of spec.ports ?? []) {
        args.push("--publish", `${p.ip ?? "0.0.0.0"}:${p.external}:${p.internal}/${p.protocol ?? "tcp"}`);
    }
    args.push(spec.image, ...(spec.command ?? []));
    return args;
}

/** The uploads as one tar (paths relative to /), as the provider copies them into the container. */
export async function uploadsTar(uploads: { file: string; content: string }[]): Promise<Buffer> {
    const dir = await makeTempDir("uploads");
    for (const u of uploads) {
        const target = path.join(dir, u.file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, u.content, { mode: 0o644 });
    }
    const tar = await run("tar", [
        "-C",
        dir,
        "--owner=0",
        "--group=0",
        "-c",
        ...uploads.map((u) => u.file.replace(/^\//, "")),
    ]);
    return tar.stdoutBytes;
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
