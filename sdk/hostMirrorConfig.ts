import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../provider/dynamic/provider";
import { placeOfTarget } from "../provider/host/apply";
import { renderHostFiles } from "../provider/host/render";
import type { HostMirrorSpec } from "../provider/host/types";
import { claimPlaces } from "./claims";
import { aptWithAptMirrors, type HostAptMirrorArgs, registriesWithImageMirrors } from "./hostMirrorWiring";
import type { ImageMirror } from "./imageMirror";

/**
 * Claims the files `spec` renders: a file another HostMirrorConfig of the program writes is
 * refused before anything runs (the second's backup of the first's file would be "restored" as
 * the original).
 */
function claimFiles(resource: string, spec: HostMirrorSpec): void {
    let files: string[];
    let place: string;
    try {
        files = renderHostFiles(spec).map((f) => f.path);
        place = placeOfTarget(spec);
    } catch {
        return; // invalid inputs: check names the argument
    }
    claimPlaces(
        `HostMirrorConfig "${resource}"`,
        "target",
        files.map((file) => `${place}/${file}`),
        "give each resource its own names (name, caCertificates[].name, apt[].name) or its own target",
    );
}

export interface RegistryMirrorArgs {
    /** Registry (or `registry/namespace` prefix) whose pulls are redirected, e.g. "quay.io". */
    source: pulumi.Input<string>;
    /** Mirror locations tried in order, `host[:port][/namespace]`, no scheme. */
    mirrors: pulumi.Input<pulumi.Input<string>[]>;
    /** Use the mirrors only for pulls by digest. Defaults to true. */
    mirrorByDigestOnly?: pulumi.Input<boolean>;
    /** Allow plain HTTP or unverified TLS to the mirrors. Defaults to false. */
    insecure?: pulumi.Input<boolean>;
}

export interface CaCertificateArgs {
    /** File name without extension: `usr/local/share/ca-certificates/<name>.crt`. */
    name: pulumi.Input<string>;
    /** One or more PEM certificates. */
    pem: pulumi.Input<string>;
}

export interface HostAptSourceArgs {
    /** File name without extension: `etc/apt/sources.list.d/<name>.sources`. */
    name: pulumi.Input<string>;
    uris: pulumi.Input<pulumi.Input<string>[]>;
    suites: pulumi.Input<pulumi.Input<string>[]>;
    /** Required unless every suite is an exact path ending in "/". */
    components?: pulumi.Input<pulumi.Input<string>[]>;
    /** Armored OpenPGP public key(s); written to `etc/apt/keyrings/<name>.asc` and named by Signed-By. */
    signedBy: pulumi.Input<string>;
    /** Defaults to every architecture the host has. */
    architectures?: pulumi.Input<pulumi.Input<string>[]>;
}

export interface SshTargetArgs {
    host: pulumi.Input<string>;
    /** Defaults to 22. */
    port?: pulumi.Input<number>;
    user: pulumi.Input<string>;
    /** Armored OpenSSH private key text (no passphrase). Kept as a secret in the state even when given in clear. */
    privateKey: pulumi.Input<string>;
    /**
     * The host's public key as in known_hosts, e.g. "ssh-ed25519 AAAA…" (`ssh-keyscan -t ed25519 host`).
     * Pinned: a host presenting another key is an error; an unknown key is never trusted.
     */
    hostKey: pulumi.Input<string>;
    /** Write files as root through `sudo -n` (passwordless sudo), owned by root. Defaults to false (SFTP as `user`). */
    sudo?: pulumi.Input<boolean>;
    /** Remote directory that stands for `/`. Defaults to "/". */
    root?: pulumi.Input<string>;
    /** Milliseconds for the connection and the SSH handshake. Defaults to 10000. */
    connectTimeoutMs?: pulumi.Input<number>;
}

/** Exactly one of `local` and `ssh`. */
export interface HostTargetArgs {
    /** The local host. `root` stands for `/` and defaults to "/"; tests point it at a temporary directory. */
    local?: pulumi.Input<{ root?: pulumi.Input<string> }>;
    /** Another host over SSH: one connection per operation, operations on different hosts run concurrently. */
    ssh?: pulumi.Input<SshTargetArgs>;
}

export interface ReloadArgs {
    /** Run with `/bin/sh -c` on the host (through `sudo -n` with `target.ssh.sudo`), e.g. "update-ca-certificates". */
    command: pulumi.Input<string>;
    /** Paths relative to the root the command depends on; empty means any file of this resource. */
    after: pulumi.Input<pulumi.Input<string>[]>;
}

export interface HostMirrorConfigArgs {
    target: pulumi.Input<HostTargetArgs>;
    /**
     * Commands run in order over the same connection after the files are written, each only when one
     * of its `after` paths changed. A failing command fails the update (the files stay); the next
     * `pulumi up` runs it again. Defaults to none.
     */
    reload?: pulumi.Input<pulumi.Input<ReloadArgs>[]>;
    /** Name of the registries drop-in and of the backup folder. Defaults to the resource name. */
    name?: pulumi.Input<string>;
    /** Rendered to `etc/containers/registries.conf.d/<name>.conf` (registries.conf v2). */
    registries?: pulumi.Input<pulumi.Input<RegistryMirrorArgs>[]>;
    /** Written to `usr/local/share/ca-certificates/<name>.crt`. */
    caCertificates?: pulumi.Input<pulumi.Input<CaCertificateArgs>[]>;
    /** deb822 sources with their keyrings. */
    apt?: pulumi.Input<pulumi.Input<HostAptSourceArgs>[]>;
    /** ImageMirrors whose `registries` entries are appended to `registries`. Defaults to none. */
    imageMirrors?: ImageMirror[];
    /**
     * AptMirrors whose published suites are appended to `apt`: suite `publish.distribution ??
     * source.distribution`, the source's components, the mirror's public key, URI `url/<prefix>`.
     * Defaults to none.
     */
    aptMirrors?: HostAptMirrorArgs[];
    /**
     * CA certificate location: "debian" (`usr/local/share/ca-certificates/<name>.crt`) or "rhel"
     * (`etc/pki/ca-trust/source/anchors/<name>.crt`). Defaults to "debian".
     */
    caTrust?: pulumi.Input<"debian" | "rhel">;
    /**
     * Also write containerd's `etc/containerd/certs.d/<registry>/hosts.toml` for each `registries`
     * entry (a digest-only mirror may pull, not resolve tags), and `_default/hosts.toml` for
     * `defaultMirror`. Defaults to false.
     */
    containerd?: pulumi.Input<
        boolean | { defaultMirror?: pulumi.Input<pulumi.Input<string>[]>; insecure?: pulumi.Input<boolean> }
    >;
    /**
     * Also set `registry-mirrors` (the `docker.io` entry's mirrors) and `insecure-registries` in
     * `etc/docker/daemon.json`, every other key of the host's file kept. Docker has no digest-only
     * mode: its mirrors serve tags too. Defaults to false.
     */
    docker?: pulumi.Input<boolean>;
    /** Disable the host's other APT sources (restored on destroy). Defaults to false. */
    aptDisableOtherSources?: pulumi.Input<boolean>;
    /** Write `etc/pip.conf` with this index. Defaults to none. */
    pip?: pulumi.Input<{ indexUrl: pulumi.Input<string>; trustedHost?: pulumi.Input<string> }>;
}

/**
 * Points a host at the site's mirrors: containers `registries.conf.d` drop-in, CA certificates,
 * APT deb822 sources and keyrings. Files are written atomically; originals are kept and restored
 * on destroy; `pulumi refresh` reports files edited or removed by hand, `pulumi up` restores them.
 */
export class HostMirrorConfig extends pulumi.dynamic.Resource {
    /** Path (relative to the root) → SHA256 of each managed file; "" for a file found missing. */
    declare public readonly files: pulumi.Output<Record<string, string>>;
    declare public readonly name: pulumi.Output<string>;

    constructor(name: string, args: HostMirrorConfigArgs, opts?: pulumi.CustomResourceOptions) {
        const fileName = pulumi.output(args.name ?? name);
        // The SSH key goes beside the target, as a secret of its own: the rest of the target (host,
        // user, root) stays readable in previews.
        const target = pulumi.output(args.target);
        const plainTarget = pulumi.unsecret(
            target.apply((t) => {
                if (!t?.ssh) return t;
                const { privateKey: _key, ...ssh } = t.ssh as unknown as Record<string, unknown>;
                return { ...t, ssh } as unknown as HostTargetArgs;
            }),
        );
        const sshPrivateKey = target.apply((t) =>
            t?.ssh ? pulumi.secret((t.ssh as unknown as { privateKey?: string }).privateKey ?? "") : undefined,
        );
        const registries = registriesWithImageMirrors(args.registries, args.imageMirrors);
        const apt = aptWithAptMirrors(args.apt, args.aptMirrors);
        const formats = {
            caTrust: args.caTrust,
            containerd: args.containerd,
            docker: args.docker,
            aptDisableOtherSources: args.aptDisableOtherSources,
            pip: args.pip,
        };
        const spec = pulumi.unsecret(
            pulumi.output({
                target: args.target,
                registries,
                caCertificates: args.caCertificates ?? [],
                apt,
                ...formats,
            }),
        );
        // The name passes through the claim, so that a conflict fails the program before any step.
        const claimed = pulumi.all([fileName, spec]).apply(([n, rest]) => {
            claimFiles(name, { ...rest, name: n } as HostMirrorSpec);
            return n;
        });
        super(
            forwardingProvider("pulumi-airgap/provider/host/operations"),
            name,
            {
                name: claimed,
                target: plainTarget,
                sshPrivateKey,
                reload: args.reload,
                registries,
                caCertificates: args.caCertificates ?? [],
                apt,
                ...formats,
                files: undefined,
                records: undefined,
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "sshPrivateKey"] },
            "airgap",
            "HostMirrorConfig",
        );
    }
}
