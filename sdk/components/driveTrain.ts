/**
 * The MCP DriveTrain local-mirror layout: APT mirrors, the site registry and (optionally) git,
 * served on the DriveTrain node on the MCP ports, every cluster node pointed at them, and the
 * reclass parameters a DriveTrain model reads to use them.
 */
import * as fs from "node:fs";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { invalidArgument } from "../../provider/errors";
import { AptMirror, type AptSigningArgs, type AptSourceArgs } from "../aptMirror";
import { HostMirrorConfig, type HostMirrorConfigArgs } from "../hostMirrorConfig";
import { ImageMirror, type ImageMirrorTlsArgs } from "../imageMirror";
import { ProgramInputError, readLockFile } from "../lock";
import type { MirrorVM } from "../mirrorVm";

/** The MCP mirror's ports. */
export const DRIVETRAIN_PORTS = { apt: 80, files: 8078, registry: 5000, git: 8088 } as const;

/** Images of the serving containers. */
export const DRIVETRAIN_CONTAINER_IMAGES = { nginx: "nginx:1.27", registry: "registry:2" } as const;

export interface DriveTrainAptRepoArgs {
    /** The repository's name in the model and its publish prefix, e.g. "ubuntu" or "saltstack". */
    name: string;
    /** Suite the hosts use, e.g. "bionic". Defaults to the source's distribution (online). */
    distribution?: string;
    /** Defaults to ["main"]. */
    components?: string[];
    /** Defaults to ["amd64"]. */
    architectures?: string[];
    /** Upstream (online mode; required there, ignored offline). */
    source?: AptSourceArgs;
    /** Package queries (online mode; required there). */
    packages?: pulumi.Input<pulumi.Input<string>[]>;
    /** Pins the resolved packages (see AptMirrorArgs.lockFile). Defaults to none. */
    lockFile?: string;
}

export interface DriveTrainNodeArgs {
    /** Node name, e.g. "ctl01"; also the name of its HostMirrorConfig child. */
    name: string;
    /** Where the node's files are written (HostMirrorConfig target). */
    target: HostMirrorConfigArgs["target"];
}

export interface DriveTrainArchiveArgs {
    /** The images carried in: `oci-archive:/media/transfer/images.tar` or `oci:/path`. */
    images: string;
    /** The image lock written on the connected side: the images are pinned, nothing is resolved upstream. */
    imageLockFile: string;
    /** The published APT trees carried in (`<prefix>/dists/…`, `<prefix>/pool/…`), served as they are. */
    aptRoot: string;
    /** Armored public key the carried-in trees are signed with. */
    aptPublicKey: pulumi.Input<string>;
}

export interface DriveTrainOfflineArgs {
    /** A MirrorVM image that serves everything (the MCP offline mirror image). */
    mirrorVm?: MirrorVM;
    /** Or a lock and archive carried in, served by the same containers as online. */
    archive?: DriveTrainArchiveArgs;
}

export interface DriveTrainMirrorsArgs {
    /** "online" syncs from upstream; "offline" contacts no upstream. Defaults to "online". */
    mode?: "online" | "offline";
    /** Host name or address the cluster reaches the DriveTrain node (or the mirror VM) at. */
    address: pulumi.Input<string>;
    /** APT repositories, each published under `<aptRoot>/<name>`. Defaults to none. */
    apt?: DriveTrainAptRepoArgs[];
    /** Signs the published repositories (online). Required online when `apt` is not empty. */
    signing?: pulumi.Input<AptSigningArgs>;
    /** Images copied into the site registry (online). Defaults to none. */
    images?: pulumi.Input<pulumi.Input<string>[]>;
    /** Pins the image digests (online). Defaults to none. */
    imageLockFile?: string;
    /** TLS settings for the image registries; the site registry is always reached as insecure. Defaults to none. */
    imageTls?: ImageMirrorTlsArgs;
    /** Offline sources; required in offline mode. */
    offline?: DriveTrainOfflineArgs;
    /** APT trees on the DriveTrain node. Defaults to "/srv/volumes/aptly/public". */
    aptRoot?: string;
    /** Plain files (QCOW images, tarballs) served on the files port. Defaults to "/srv/volumes/files". */
    filesRoot?: string;
    /** Registry storage. Defaults to "/srv/volumes/registry". */
    registryRoot?: string;
    /** Git repositories (bare, `git update-server-info` run) served over HTTP. Defaults to none: no git service. */
    gitRoot?: string;
    /** Defaults to the MCP ports (`DRIVETRAIN_PORTS`): APT 80, files 8078, registry 5000, git 8088. */
    ports?: Partial<Record<keyof typeof DRIVETRAIN_PORTS, number>>;
    /** Defaults to `DRIVETRAIN_CONTAINER_IMAGES`. */
    containerImages?: Partial<Record<keyof typeof DRIVETRAIN_CONTAINER_IMAGES, string>>;
    /**
     * Command of the nginx containers. Defaults to the image's own (the official image runs
     * `nginx -g "daemon off;"`); an image without one needs e.g. ["nginx", "-g", "daemon off;"].
     */
    nginxCommand?: string[];
    /** Docker network mode of the containers. Defaults to "bridge" (ports published on the node). */
    networkMode?: "bridge" | "host";
    /** Cluster nodes pointed at the mirrors. Defaults to none. */
    nodes?: DriveTrainNodeArgs[];
    /** Name of the host files (registries drop-in, backup folder). Defaults to "drivetrain". */
    hostConfigName?: string;
    /** `mcp_version` in the parameters. Defaults to "2019.2.0". */
    mcpVersion?: string;
}

/**
 * Checks the arguments that do not depend on outputs; throws an error naming the argument.
 */
export function validateDriveTrainMirrorsArgs(args: DriveTrainMirrorsArgs): void {
    const mode = args.mode ?? "online";
    if (mode !== "online" && mode !== "offline") {
        throw invalidArgument("mode", `must be "online" or "offline", not ${JSON.stringify(mode)}`);
    }
    const names = new Set<string>();
    (args.apt ?? []).forEach((repo, i) => {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo.name ?? "")) {
            throw invalidArgument(`apt[${i}].name`, "must be a plain name (letters, digits, '.', '_', '-')");
        }
        if (names.has(repo.name)) {
            throw invalidArgument(
                `apt[${i}].name`,
                `"${repo.name}" is listed twice; give each repository its own name`,
            );
        }
        names.add(repo.name);
        if (mode === "online") {
            if (repo.source === undefined) {
                throw invalidArgument(`apt[${i}].source`, "is required in online mode (the upstream to sync from)");
            }
            if (repo.packages === undefined) {
                throw invalidArgument(`apt[${i}].packages`, "is required in online mode");
            }
        } else if (repo.distribution === undefined) {
            throw invalidArgument(
                `apt[${i}].distribution`,
                "is required in offline mode (no upstream to take it from)",
            );
        }
    });
    if (mode === "online" && (args.apt ?? []).length > 0 && args.signing === undefined) {
        throw invalidArgument("signing", "is required when online mode publishes APT repositories");
    }
    if (mode === "offline") {
        const offline = args.offline;
        if (offline?.mirrorVm === undefined && offline?.archive === undefined) {
            throw invalidArgument(
                "offline",
                "offline mode needs offline.mirrorVm (a MirrorVM image) or offline.archive (a lock and archive carried in); no upstream is contacted",
            );
        }
        if (offline.mirrorVm !== undefined && offline.archive !== undefined) {
            throw invalidArgument("offline", "give offline.mirrorVm or offline.archive, not both");
        }
        if (offline.archive !== undefined) {
            if (!offline.archive.imageLockFile) {
                throw invalidArgument(
                    "offline.archive.imageLockFile",
                    "is required: without it the images would be resolved",
                );
            }
            if (!/^(oci-archive|oci):/.test(offline.archive.images ?? "")) {
                throw invalidArgument("offline.archive.images", "must be an oci-archive: or oci: location");
            }
            if (!offline.archive.aptRoot) {
                throw invalidArgument("offline.archive.aptRoot", "is required (the published APT trees carried in)");
            }
        }
    }
    for (const [key, port] of Object.entries(args.ports ?? {})) {
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
            throw invalidArgument(`ports.${key}`, `must be a TCP port, not ${JSON.stringify(port)}`);
        }
    }
}

/**
 * A complete nginx.conf serving static trees (`port` → `root`), with directory listings and
 * logs to the container's output. Complete rather than a conf.d drop-in, so that the same
 * file works in the official image and in a Debian one (whose default site also listens on 80).
 */
export function nginxConfig(servers: readonly { port: number; root: string }[]): string {
    return [
        "worker_processes auto;",
        "pid /tmp/nginx.pid;",
        "error_log /dev/stderr;",
        "events {",
        "    worker_connections 1024;",
        "}",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        "    sendfile on;",
        "    access_log /dev/stdout;",
        ...servers.flatMap(({ port, root }) => [
            "    server {",
            `        listen ${port};`,
            `        root ${root};`,
            "        autoindex on;",
            "        location / {",
            "            try_files $uri $uri/ =404;",
            "        }",
            "    }",
        ]),
        "}",
        "",
    ].join("\n");
}

/** One repository as hosts and the model see it. */
interface ServedRepo {
    name: string;
    uri: string;
    suite: string;
    components: string[];
    architectures: string[];
    key: string;
}

export interface DriveTrainParametersInput {
    address: string;
    ports: Record<keyof typeof DRIVETRAIN_PORTS, number>;
    git: boolean;
    mcpVersion: string;
    repos: ServedRepo[];
    /** Overrides the URLs (a MirrorVM's `urls`). */
    urls?: { apt: string; registry: string; git: string; files: string };
}

function hostPort(address: string, port: number, implicit?: number): string {
    return port === implicit ? address : `${address}:${port}`;
}

/**
 * The reclass parameters of a DriveTrain model that uses the mirrors, as YAML: `_param` values
 * the MCP system model derives per-repository URLs and images from (`linux_system_repo_url`,
 * `mcp_docker_registry`), and a `linux.system.repo` entry per repository with its key.
 */
export function driveTrainParameters(p: DriveTrainParametersInput): string {
    const aptUrl = (p.urls?.apt ?? `http://${hostPort(p.address, p.ports.apt, 80)}`).replace(/\/$/, "");
    const registry = p.urls?.registry ?? hostPort(p.address, p.ports.registry);
    const filesUrl = p.urls?.files ?? `http://${hostPort(p.address, p.ports.files, 80)}`;
    const param: Record<string, string> = {
        mcp_version: p.mcpVersion,
        local_repo_url: p.address,
        linux_system_repo_url: aptUrl,
        mcp_docker_registry: registry,
        docker_registry: registry,
        local_files_url: filesUrl.replace(/\/$/, ""),
    };
    if (p.git) {
        param.local_git_url = (p.urls?.git ?? `http://${hostPort(p.address, p.ports.git, 80)}`).replace(/\/$/, "");
    }
    const repo: Record<string, unknown> = {};
    for (const r of p.repos) {
        repo[`mcp_local_${r.name}`] = {
            source: `deb [arch=${r.architectures.join(",")}] ${r.uri} ${r.suite} ${r.components.join(" ")}`,
            architectures: r.architectures.join(","),
            key: r.key,
            default: true,
            clean_file: true,
        };
    }
    return stringify(
        { parameters: { _param: param, linux: { system: { repo } } } },
        { lineWidth: 0, blockQuote: "literal" },
    );
}

/**
 * The MCP local-mirror layout of a DriveTrain node.
 *
 * Online: one AptMirror per repository synced from upstream and published under `aptRoot`, an
 * ImageMirror into the site registry, served by containers (`@pulumi/docker`) on the node: nginx
 * for the APT trees (80) and plain files (8078), a registry (5000) and optionally git over HTTP
 * (8088). Offline: a MirrorVM that serves the same, or the same containers serving an APT tree
 * and images carried in with their lock; no upstream is contacted. Every node is configured by a
 * HostMirrorConfig; `parameters` is the reclass YAML for the model.
 */
export class DriveTrainMirrors extends pulumi.ComponentResource {
    /** Reclass parameters (YAML text) for the DriveTrain model. */
    public readonly parameters: pulumi.Output<string>;
    /** APT, registry (`host:port`), files and git ("" without git) locations. */
    public readonly urls: pulumi.Output<{ apt: string; registry: string; files: string; git: string }>;
    /** The AptMirrors (online). */
    public readonly aptMirrors: AptMirror[];
    /** The ImageMirror (online with images, offline from an archive). */
    public readonly imageMirror?: ImageMirror;
    /** The serving containers by service: "apt-files", "registry", "git". */
    public readonly containers: Record<string, docker.Container>;
    /** The HostMirrorConfig of each node, by node name. */
    public readonly nodes: Record<string, HostMirrorConfig>;

    constructor(name: string, args: DriveTrainMirrorsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("airgap:components:DriveTrainMirrors", name, {}, opts);
        let carried: string[] = [];
        try {
            validateDriveTrainMirrorsArgs(args);
            if ((args.mode ?? "online") === "offline" && args.offline?.archive !== undefined) {
                carried = archiveImages(args.offline.archive.imageLockFile);
            }
        } catch (err) {
            throw new ProgramInputError(`DriveTrainMirrors "${name}": ${(err as Error).message}`, err);
        }
        const mode = args.mode ?? "online";
        const ports = { ...DRIVETRAIN_PORTS, ...args.ports };
        const images = { ...DRIVETRAIN_CONTAINER_IMAGES, ...args.containerImages };
        const address = pulumi.output(args.address);
        const vm = mode === "offline" ? args.offline?.mirrorVm : undefined;
        const archive = mode === "offline" ? args.offline?.archive : undefined;
        const aptRoot = archive?.aptRoot ?? args.aptRoot ?? "/srv/volumes/aptly/public";
        const filesRoot = args.filesRoot ?? "/srv/volumes/files";
        const registryRoot = args.registryRoot ?? "/srv/volumes/registry";
        const networkMode = args.networkMode ?? "bridge";
        const child = { parent: this };

        this.aptMirrors = [];
        this.containers = {};
        this.nodes = {};

        // Serving containers: online, and offline from an archive (a MirrorVM serves itself).
        if (vm === undefined) {
            const pulled = (key: string, image: string) =>
                new docker.RemoteImage(`${name}-${key}-image`, { name: image, keepLocally: true }, child);
            const nginx = pulled("nginx", images.nginx);
            const registryImage = pulled("registry", images.registry);
            const portsOf = (...list: number[]) =>
                networkMode === "host" ? undefined : list.map((p) => ({ internal: p, external: p }));
            const common = { restart: "always", networkMode, mustRun: true };
            const nginxCommand = args.nginxCommand === undefined ? {} : { command: args.nginxCommand };
            this.containers["apt-files"] = new docker.Container(
                `${name}-apt-files`,
                {
                    ...common,
                    name: `${name}-apt-files`,
                    image: nginx.imageId,
                    ports: portsOf(ports.apt, ports.files),
                    volumes: [
                        { hostPath: aptRoot, containerPath: "/srv/apt", readOnly: true },
                        { hostPath: filesRoot, containerPath: "/srv/files", readOnly: true },
                    ],
                    uploads: [
                        {
                            file: "/etc/nginx/nginx.conf",
                            content: nginxConfig([
                                { port: ports.apt, root: "/srv/apt" },
                                { port: ports.files, root: "/srv/files" },
                            ]),
                        },
                    ],
                    ...nginxCommand,
                },
                child,
            );
            this.containers.registry = new docker.Container(
                `${name}-registry`,
                {
                    ...common,
                    name: `${name}-registry`,
                    image: registryImage.imageId,
                    ports: portsOf(ports.registry),
                    envs: [
                        `REGISTRY_HTTP_ADDR=0.0.0.0:${ports.registry}`,
                        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/registry",
                        // ImageMirror removes the manifests it pushed when destroyed.
                        "REGISTRY_STORAGE_DELETE_ENABLED=true",
                    ],
                    volumes: [{ hostPath: registryRoot, containerPath: "/var/lib/registry" }],
                },
                child,
            );
            if (args.gitRoot !== undefined) {
                // Dumb HTTP: `git clone http://<node>:8088/<repo>.git` needs only static files.
                this.containers.git = new docker.Container(
                    `${name}-git`,
                    {
                        ...common,
                        name: `${name}-git`,
                        image: nginx.imageId,
                        ports: portsOf(ports.git),
                        volumes: [{ hostPath: args.gitRoot, containerPath: "/srv/git", readOnly: true }],
                        uploads: [
                            {
                                file: "/etc/nginx/nginx.conf",
                                content: nginxConfig([{ port: ports.git, root: "/srv/git" }]),
                            },
                        ],
                        ...nginxCommand,
                    },
                    child,
                );
            }
        }

        const siteRegistry = address.apply((a) => `${a}:${ports.registry}`);
        const registryTls = (extra?: ImageMirrorTlsArgs): pulumi.Input<ImageMirrorTlsArgs> =>
            pulumi.all([siteRegistry, extra?.insecureRegistries ?? []]).apply(([site, insecure]) => ({
                ...(extra?.caCert === undefined ? {} : { caCert: extra.caCert }),
                insecureRegistries: [...insecure, site],
            }));
        const registryUp = this.containers.registry === undefined ? [] : [this.containers.registry];

        let repos: pulumi.Output<ServedRepo[]>;
        let registries: NonNullable<HostMirrorConfigArgs["registries"]>;
        let urls: pulumi.Output<{ apt: string; registry: string; files: string; git: string }>;

        if (vm !== undefined) {
            urls = vm.urls.apply((u) => ({ ...u, git: args.gitRoot === undefined ? "" : u.git }));
            repos = vm.hostConfig.apply((h) =>
                h.apt.map((a) => ({
                    name: a.name,
                    uri: a.uris[0],
                    suite: a.suites[0],
                    components: a.components,
                    architectures: ["amd64"],
                    key: a.signedBy,
                })),
            );
            registries = vm.hostConfig.apply((h) => h.registries);
        } else {
            urls = address.apply((a) => ({
                apt: `http://${hostPort(a, ports.apt, 80)}`,
                registry: `${a}:${ports.registry}`,
                files: `http://${hostPort(a, ports.files, 80)}`,
                git: args.gitRoot === undefined ? "" : `http://${hostPort(a, ports.git, 80)}`,
            }));
            const aptUrl = urls.apply((u) => u.apt);
            const entries = (args.apt ?? []).map((repo) => {
                const components = repo.components ?? ["main"];
                const architectures = repo.architectures ?? ["amd64"];
                let key: pulumi.Input<string>;
                let suite: pulumi.Input<string>;
                if (archive !== undefined) {
                    key = archive.aptPublicKey;
                    suite = repo.distribution as string;
                } else {
                    const mirror = new AptMirror(
                        `${name}-${repo.name}`,
                        {
                            source: { components, architectures, ...repo.source! },
                            packages: repo.packages!,
                            publish: {
                                root: aptRoot,
                                prefix: repo.name,
                                ...(repo.distribution === undefined ? {} : { distribution: repo.distribution }),
                                origin: "mcp-local",
                            },
                            signing: args.signing,
                            ...(repo.lockFile === undefined ? {} : { lockFile: repo.lockFile }),
                        },
                        child,
                    );
                    this.aptMirrors.push(mirror);
                    key = mirror.publicKey;
                    suite = repo.distribution ?? pulumi.output(repo.source!.distribution);
                }
                return pulumi.all([aptUrl, key, suite]).apply(([u, k, s]) => ({
                    name: repo.name,
                    uri: `${u}/${repo.name}`,
                    suite: s,
                    components,
                    architectures,
                    key: k,
                }));
            });
            repos = pulumi.all(entries);
            if (archive !== undefined) {
                this.imageMirror = new ImageMirror(
                    `${name}-images`,
                    {
                        images: carried,
                        source: archive.images,
                        destination: pulumi.interpolate`docker://${siteRegistry}`,
                        lockFile: archive.imageLockFile,
                        tls: registryTls(args.imageTls),
                    },
                    { ...child, dependsOn: registryUp },
                );
            } else if (args.images !== undefined) {
                this.imageMirror = new ImageMirror(
                    `${name}-images`,
                    {
                        images: args.images,
                        destination: pulumi.interpolate`docker://${siteRegistry}`,
                        tls: registryTls(args.imageTls),
                        ...(args.imageLockFile === undefined ? {} : { lockFile: args.imageLockFile }),
                    },
                    { ...child, dependsOn: registryUp },
                );
            }
            registries = this.imageMirror?.registries ?? [];
        }
        this.urls = urls;

        const hostApt = repos.apply((list) =>
            list.map((r) => ({
                name: `${args.hostConfigName ?? "drivetrain"}-${r.name}`,
                uris: [r.uri],
                suites: [r.suite],
                components: r.components,
                signedBy: r.key,
            })),
        );
        const served: pulumi.Resource[] = [
            ...this.aptMirrors,
            ...(this.imageMirror === undefined ? [] : [this.imageMirror]),
            ...Object.values(this.containers),
            ...(vm === undefined ? [] : [vm]),
        ];
        for (const node of args.nodes ?? []) {
            this.nodes[node.name] = new HostMirrorConfig(
                `${name}-${node.name}`,
                {
                    target: node.target,
                    name: args.hostConfigName ?? "drivetrain",
                    registries,
                    apt: hostApt,
                },
                { ...child, dependsOn: served },
            );
        }

        this.parameters = pulumi.all([address, repos, urls]).apply(([a, list, u]) =>
            driveTrainParameters({
                address: a,
                ports,
                git: args.gitRoot !== undefined,
                mcpVersion: args.mcpVersion ?? "2019.2.0",
                repos: list,
                ...(vm === undefined ? {} : { urls: u }),
            }),
        );
        this.registerOutputs({ parameters: this.parameters, urls: this.urls });
    }
}

/**
 * The image references of a lock file written on the connected side: offline, the lock is the
 * list of what was carried in.
 */
export function archiveImages(lockFile: string): string[] {
    // Read while the program runs; a missing or bad file is an error naming the argument.
    if (!fs.existsSync(lockFile)) {
        throw invalidArgument(
            "offline.archive.imageLockFile",
            `${lockFile} does not exist; bring the lock written with the archive`,
        );
    }
    const saved = readLockFile(lockFile, lockFile);
    const images = saved.images;
    if (typeof images !== "object" || images === null || Array.isArray(images)) {
        throw invalidArgument("offline.archive.imageLockFile", `${lockFile} holds no images`);
    }
    return Object.keys(images).sort();
}
