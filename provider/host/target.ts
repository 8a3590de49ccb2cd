/**
 * Targets: the local host (a directory standing for "/") or another host over SSH. Their
 * validation, how each is named (ids, claims, messages), and the transport each opens.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Problem } from "../errors";
import { placeOf } from "../store/place";
import { parseHostKey, SshTransport, sshPlace } from "./ssh";
import type { HostMirrorSpec, HostTarget } from "./types";
import { type HostTransport, LocalTransport } from "./transport";

/** The root a target names, as given. */
export function rootOf(spec: Pick<HostMirrorSpec, "target">): string {
    return spec.target?.ssh ? (spec.target.ssh.root ?? "/") : (spec.target?.local?.root ?? "/");
}

/**
 * The place a target stands for, spelled one way: a local directory as `store/place.ts` spells
 * it, an SSH target as "ssh://user@host:port/root".
 */
export function placeOfTarget(spec: Pick<HostMirrorSpec, "target">): string {
    const ssh = spec.target?.ssh;
    if (ssh) {
        return sshPlace(ssh);
    }
    return placeOf(rootOf(spec));
}

/** Opens the transport of `target`: one connection per call for SSH. The caller MUST close it. */
export async function openTransport(target: HostTarget): Promise<HostTransport> {
    if (target.ssh) {
        return SshTransport.connect(target.ssh);
    }
    return new LocalTransport(placeOf(target.local?.root ?? "/"));
}

const hostName =
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?|[0-9A-Fa-f:.]+|\[[0-9A-Fa-f:.]+\])$/;
const userName = /^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/;

function sshProblems(problems: Problem[], ssh: Record<string, unknown>): void {
    const at = "target.ssh";
    if (typeof ssh.host !== "string" || !hostName.test(ssh.host)) {
        problems.push({
            argument: `${at}.host`,
            problem: `${ssh.host === undefined ? "is missing" : `"${String(ssh.host)}" is not a host name or IP address`}: give e.g. "node1.example" or "10.0.0.5"`,
        });
    }
    if (
        ssh.port !== undefined &&
        (!Number.isInteger(ssh.port) || (ssh.port as number) < 1 || (ssh.port as number) > 65535)
    ) {
        problems.push({
            argument: `${at}.port`,
            problem: `${String(ssh.port)} is not a port: give 1 to 65535 (default 22)`,
        });
    }
    if (typeof ssh.user !== "string" || !userName.test(ssh.user)) {
        problems.push({
            argument: `${at}.user`,
            problem:
                ssh.user === undefined || ssh.user === ""
                    ? "is missing: give the login user"
                    : `"${String(ssh.user)}" is not a user name`,
        });
    }
    if (typeof ssh.privateKey !== "string" || !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(ssh.privateKey)) {
        problems.push({
            argument: `${at}.privateKey`,
            problem:
                "is missing or not a private key: give the armored key text (-----BEGIN OPENSSH PRIVATE KEY-----), as a secret",
        });
    } else {
        const { utils } = require("ssh2") as typeof import("ssh2");
        const parsed = utils.parseKey(ssh.privateKey);
        const key = Array.isArray(parsed) ? parsed[0] : parsed;
        if (key instanceof Error || key === undefined) {
            // Never quote the key: its text is secret.
            problems.push({
                argument: `${at}.privateKey`,
                problem: `does not parse${key instanceof Error ? ` (${key.message})` : ""}; a key with a passphrase is not supported`,
            });
        } else if (!key.isPrivateKey()) {
            problems.push({ argument: `${at}.privateKey`, problem: "is a public key: give the private key" });
        }
    }
    if (ssh.hostKey === undefined || ssh.hostKey === "") {
        problems.push({
            argument: `${at}.hostKey`,
            problem:
                'is missing: pin the host\'s key as in known_hosts ("ssh-ed25519 AAAA…", e.g. from ssh-keyscan); unknown keys are never trusted',
        });
    } else if (typeof ssh.hostKey !== "string" || !parseHostKey(ssh.hostKey)) {
        problems.push({
            argument: `${at}.hostKey`,
            problem: `"${String(ssh.hostKey).slice(0, 60)}" is not a public key such as "ssh-ed25519 AAAA…" (type, then base64 of a key of that type)`,
        });
    }
    if (ssh.sudo !== undefined && typeof ssh.sudo !== "boolean") {
        problems.push({ argument: `${at}.sudo`, problem: "must be true or false" });
    }
    if (ssh.root !== undefined && (typeof ssh.root !== "string" || !ssh.root.startsWith("/"))) {
        problems.push({
            argument: `${at}.root`,
            problem: `"${String(ssh.root)}" must be an absolute path on the host`,
        });
    }
    if (
        ssh.connectTimeoutMs !== undefined &&
        (!Number.isInteger(ssh.connectTimeoutMs) || (ssh.connectTimeoutMs as number) < 1)
    ) {
        problems.push({ argument: `${at}.connectTimeoutMs`, problem: "must be a positive number of milliseconds" });
    }
}

/** Problems with `target` and `reload`, each naming its argument. */
export function targetProblems(spec: Pick<HostMirrorSpec, "target" | "reload">): Problem[] {
    const problems: Problem[] = [];
    const target = spec.target as HostTarget | undefined;
    if (!target || (!target.local && !target.ssh) || (target.local && target.ssh)) {
        problems.push({
            argument: "target",
            problem:
                "must be exactly one of { local: { root?: string } } and { ssh: { host, user, privateKey, hostKey, … } }",
        });
    } else if (target.ssh) {
        sshProblems(problems, target.ssh as unknown as Record<string, unknown>);
    } else {
        const root = target.local?.root ?? "/";
        if (typeof root !== "string" || !path.isAbsolute(root)) {
            problems.push({ argument: "target.local.root", problem: `"${String(root)}" must be an absolute path` });
        } else if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
            problems.push({ argument: "target.local.root", problem: `"${root}" does not exist or is not a directory` });
        }
    }
    (spec.reload ?? []).forEach((r, i) => {
        const at = `reload[${i}]`;
        if (typeof r?.command !== "string" || r.command.trim() === "") {
            problems.push({ argument: `${at}.command`, problem: "must be a non-empty shell command" });
        }
        if (r?.after !== undefined && !Array.isArray(r.after)) {
            problems.push({ argument: `${at}.after`, problem: "must be a list of paths relative to the root" });
        } else {
            (r?.after ?? []).forEach((p, j) => {
                if (typeof p !== "string" || p === "" || p.startsWith("/") || p.split("/").includes("..")) {
                    problems.push({
                        argument: `${at}.after[${j}]`,
                        problem: `"${String(p)}" must be a path relative to the root, e.g. "etc/containerd/certs.d/quay.io/hosts.toml"`,
                    });
                }
            });
        }
    });
    return problems;
}
