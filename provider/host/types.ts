/** Plain (resolved) inputs of a host's mirror configuration. */

/** Another host, reached over SSH. */
export interface SshTarget {
    host: string;
    /** Defaults to 22. */
    port?: number;
    user: string;
    /** Armored OpenSSH private key text. Secret. */
    privateKey: string;
    /** The host's public key as in known_hosts ("ssh-ed25519 AAAA…"): pinned, a mismatch is an error. */
    hostKey: string;
    /** Write files as root through `sudo -n` (owner root). Defaults to false: SFTP as `user`. */
    sudo?: boolean;
    /** Remote directory that stands for `/`. Defaults to "/". */
    root?: string;
    /** Milliseconds for the connection and the SSH handshake. Defaults to 10000. */
    connectTimeoutMs?: number;
}

/** Where the files go: exactly one of `local` and `ssh`. */
export interface HostTarget {
    local?: {
        /** Directory that stands for `/`. Defaults to "/". */
        root?: string;
    };
    ssh?: SshTarget;
}

/** A command run on the host after the files are written, when a file it depends on changed. */
export interface ReloadSpec {
    /** Run with `/bin/sh -c` on the host (through `sudo -n` with `target.ssh.sudo`). */
    command: string;
    /** Paths relative to the root the command depends on; empty means any managed file. */
    after: string[];
}

export interface RegistryMirrorSpec {
    /** Registry (or registry/namespace prefix) whose pulls are redirected, e.g. "quay.io". */
    source: string;
    /** Mirror locations, tried in order, e.g. "mirror.example:5000". No scheme. */
    mirrors: string[];
    /** Use the mirrors only for pulls by digest. Defaults to true. */
    mirrorByDigestOnly?: boolean;
    /** Allow plain HTTP or unverified TLS to the mirrors. Defaults to false. */
    insecure?: boolean;
}

export interface CaCertificateSpec {
    /** File name without extension: `usr/local/share/ca-certificates/<name>.crt`. */
    name: string;
    /** One or more PEM certificates. */
    pem: string;
}

export interface AptSourceSpec {
    /** File name without extension: `etc/apt/sources.list.d/<name>.sources`. */
    name: string;
    uris: string[];
    suites: string[];
    /** Required unless every suite is an exact path (ends with "/"). */
    components?: string[];
    /** Armored OpenPGP public key(s), written to `etc/apt/keyrings/<name>.asc`. */
    signedBy: string;
    /** Restrict to these architectures. Defaults to all the host's. */
    architectures?: string[];
}

/** containerd `hosts.toml` options beyond the `registries` entries. */
export interface ContainerdSpec {
    /**
     * Mirrors (`host[:port][/namespace]`) for every registry without an entry of its own, written to
     * `etc/containerd/certs.d/_default/hosts.toml`. Defaults to none (no `_default` file).
     */
    defaultMirror?: string[];
    /** Allow plain HTTP or unverified TLS to the default mirrors. Defaults to false. */
    insecure?: boolean;
}

/** pip's `etc/pip.conf`. */
export interface PipSpec {
    /** The simple index, e.g. "http://mirror.example/pypi/simple/". */
    indexUrl: string;
    /** `host[:port]` pip trusts without TLS verification. Defaults to none. */
    trustedHost?: string;
}

export interface HostMirrorSpec {
    /** Name of the registries drop-in (`etc/containers/registries.conf.d/<name>.conf`) and of the backups. */
    name: string;
    target: HostTarget;
    /** Commands run in order after the files are written, each when one of its paths changed. */
    reload?: ReloadSpec[];
    registries?: RegistryMirrorSpec[];
    caCertificates?: CaCertificateSpec[];
    apt?: AptSourceSpec[];
    /**
     * Where CA certificates go: "debian" (`usr/local/share/ca-certificates/<name>.crt`) or "rhel"
     * (`etc/pki/ca-trust/source/anchors/<name>.crt`). Defaults to "debian".
     */
    caTrust?: "debian" | "rhel";
    /**
     * Also write containerd's `etc/containerd/certs.d/<registry>/hosts.toml`, one per `registries`
     * entry (whole registries only: containerd configures hosts, not namespaces). Defaults to false.
     */
    containerd?: boolean | ContainerdSpec;
    /**
     * Also set `registry-mirrors` (the `docker.io` entry's mirrors: Docker mirrors Docker Hub only) and
     * `insecure-registries` in `etc/docker/daemon.json`, keeping every other key. Docker has no
     * digest-only mode: its mirrors serve tags too. Defaults to false.
     */
    docker?: boolean;
    /**
     * Disable every other APT source of the host (`etc/apt/sources.list`, the other files of
     * `etc/apt/sources.list.d/`); destroy puts them back. Defaults to false.
     */
    aptDisableOtherSources?: boolean;
    /** Write `etc/pip.conf` pointing pip at a PyPI mirror. Defaults to none. */
    pip?: PipSpec;
}

/** A file the configuration consists of; `path` is relative to the target root. */
export interface HostFile {
    path: string;
    content: string;
    mode: number;
}

/** What was done to one file, kept in state so that destroy can undo it. */
export interface FileRecord {
    path: string;
    sha256: string;
    /** Path (relative to root) of the saved original, or "" when the file did not exist before. */
    backup: string;
    /** Directories (relative to root) created for this file and its backup; removed again on destroy. */
    dirs?: string[];
}
