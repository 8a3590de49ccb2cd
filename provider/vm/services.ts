/**
 * What the mirror VM runs, as text: the cloud-init NoCloud seed (user-data, meta-data,
 * network-config) and the service configurations it installs on first boot. Pure: inputs in, file
 * text out.
 *
 * The data filesystem (label {@link DATA_LABEL}) is mounted read-only at {@link MOUNT_POINT}:
 *
 *     apt/<prefix>/{dists,pool}   APT trees, served by nginx on the APT port
 *     registry/                   distribution's storage, served by docker-registry (read-only)
 *     files/<path>/               plain files, served by nginx on the files port (listings on)
 *     git/<path>                  bare repositories, cloneable over HTTP (git's "dumb" protocol)
 *     airgap/                     the service configurations below and content.json
 *
 * The base image must carry nginx (nginx-light is enough), docker-registry and cloud-init, as
 * the MCP mirror image does; nothing is installed at boot (there is no network to install from).
 */
import { stringify } from "yaml";
import { invalidArgument } from "../errors";

export const DATA_LABEL = "airgap-data";
export const MOUNT_POINT = "/srv/airgap";

export interface VmServices {
    aptPort: number;
    registryPort: number;
    gitPort: number;
    filesPort: number;
}

/** The MCP mirror image's ports. */
export const DEFAULT_SERVICES: VmServices = { aptPort: 80, registryPort: 5000, gitPort: 8088, filesPort: 8078 };

export interface VmNetwork {
    /** The VM's address with its prefix length, e.g. "10.0.0.10/24". */
    address: string;
    gateway?: string;
    dns?: string[];
}

/** Checks the ports: integers 1..65535, all different. */
export function checkServices(services: VmServices): void {
    const seen = new Map<number, string>();
    for (const key of ["aptPort", "registryPort", "gitPort", "filesPort"] as const) {
        const port = services[key];
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
            throw invalidArgument(`services.${key}`, `${JSON.stringify(port)} is not a TCP port (1 to 65535)`);
        }
        const other = seen.get(port);
        if (other !== undefined) {
            throw invalidArgument(`services.${key}`, `port ${port} is already services.${other}`);
        }
        seen.set(port, key);
    }
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const IPV6 = /^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$/;

function isAddress(s: unknown): s is string {
    return typeof s === "string" && (IPV4.test(s) || IPV6.test(s));
}

/** Checks a static network: an address with its prefix length, a gateway and DNS servers that are addresses. */
export function checkNetwork(network: VmNetwork): void {
    const m = /^(.+)\/(\d{1,3})$/.exec(typeof network.address === "string" ? network.address : "");
    const max = m !== null && m[1]!.includes(":") ? 128 : 32;
    if (m === null || !isAddress(m[1]) || Number(m[2]) > max) {
        throw invalidArgument(
            "network.address",
            `${JSON.stringify(network.address)} must be an address with its prefix length, e.g. "10.0.0.10/24"`,
        );
    }
    if (network.gateway !== undefined && !isAddress(network.gateway)) {
        throw invalidArgument("network.gateway", `${JSON.stringify(network.gateway)} is not an IP address`);
    }
    for (const [i, dns] of (network.dns ?? []).entries()) {
        if (!isAddress(dns)) {
            throw invalidArgument(`network.dns[${i}]`, `${JSON.stringify(dns)} is not an IP address`);
        }
    }
}

/** The nginx site: APT trees, plain files and git repositories, each on its port. */
export function renderNginxSite(services: VmServices): string {
    const server = (port: number, dir: string, what: string, extra: string[] = []) =>
        [
            `# ${what}`,
            "server {",
            `    listen ${port};`,
            `    listen [::]:${port};`,
            `    root ${MOUNT_POINT}/${dir};`,
            "    autoindex on;",
            ...extra.map((l) => `    ${l}`),
            "}",
        ].join("\n");
    return `${[
        "# Written by pulumi-airgap: the mirror's content is read-only under this root.",
        server(services.aptPort, "apt", "APT repositories: deb http://<mirror>/<prefix> <suite> <components>", [
            "default_type application/octet-stream;",
        ]),
        server(services.filesPort, "files", "plain files"),
        server(services.gitPort, "git", "bare git repositories: git clone http://<mirror>:<port>/<path>", [
            "default_type application/octet-stream;",
        ]),
    ].join("\n\n")}\n`;
}

/** docker-registry's configuration: the storage on the data filesystem, served read-only. */
export function renderRegistryConfig(services: VmServices): string {
    return stringify({
        version: 0.1,
        log: { fields: { service: "registry" } },
        storage: {
            filesystem: { rootdirectory: `${MOUNT_POINT}/registry` },
            maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } },
            delete: { enabled: false },
        },
        http: { addr: `:${services.registryPort}` },
    });
}

export interface UserDataOptions {
    hostname: string;
    sshAuthorizedKeys?: readonly string[];
}

/**
 * cloud-init user-data: mount the data filesystem read-only (an fstab entry, so it is mounted on
 * every later boot too), install the service configurations from it and (re)start the services.
 */
export function renderUserData(options: UserDataOptions): string {
    const config = `${MOUNT_POINT}/airgap`;
    const body: Record<string, unknown> = {
        hostname: options.hostname,
        mounts: [[`LABEL=${DATA_LABEL}`, MOUNT_POINT, "ext4", "ro,nofail,x-systemd.device-timeout=30s", "0", "0"]],
        runcmd: [
            ["mkdir", "-p", MOUNT_POINT],
            ["sh", "-c", `mountpoint -q ${MOUNT_POINT} || mount -o ro LABEL=${DATA_LABEL} ${MOUNT_POINT}`],
            ["rm", "-f", "/etc/nginx/sites-enabled/default"],
            ["ln", "-sfn", `${config}/nginx.conf`, "/etc/nginx/sites-enabled/airgap-mirror.conf"],
            ["mkdir", "-p", "/etc/docker/registry"],
            ["install", "-m", "0644", `${config}/registry.yml`, "/etc/docker/registry/config.yml"],
            ["systemctl", "enable", "nginx.service", "docker-registry.service"],
            ["systemctl", "restart", "nginx.service", "docker-registry.service"],
        ],
    };
    if ((options.sshAuthorizedKeys ?? []).length > 0) {
        body.ssh_authorized_keys = [...options.sshAuthorizedKeys!];
    }
    return `#cloud-config\n${stringify(body)}`;
}

/** cloud-init meta-data: a new instance id per image, so that cloud-init runs the seed again. */
export function renderMetaData(instanceId: string, hostname: string): string {
    return stringify({ "instance-id": instanceId, "local-hostname": hostname });
}

/** cloud-init network-config (version 2): the static address on the first Ethernet interface. */
export function renderNetworkConfig(network: VmNetwork): string {
    const ethernet: Record<string, unknown> = {
        match: { name: "e*" },
        addresses: [network.address],
    };
    if (network.gateway !== undefined) {
        ethernet.routes = [{ to: network.gateway.includes(":") ? "::/0" : "0.0.0.0/0", via: network.gateway }];
    }
    if ((network.dns ?? []).length > 0) {
        ethernet.nameservers = { addresses: [...network.dns!] };
    }
    return stringify({ version: 2, ethernets: { primary: ethernet } });
}
