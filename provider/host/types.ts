/** Plain (resolved) inputs of a host's mirror configuration. */

/** Where the files go. Only the local host in this version; SSH comes later. */
export interface HostTarget {
    local: {
        /** Directory that stands for `/`. Defaults to "/". */
        root?: string;
    };
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

export interface HostMirrorSpec {
    /** Name of the registries drop-in (`etc/containers/registries.conf.d/<name>.conf`) and of the backups. */
    name: string;
    target: HostTarget;
    registries?: RegistryMirrorSpec[];
    caCertificates?: CaCertificateSpec[];
    apt?: AptSourceSpec[];
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
