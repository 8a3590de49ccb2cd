import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { isSeq, parseDocument } from "yaml";
import { AirgapError } from "../../provider/errors";
import { loadMiniMirrorSources, type MiniMirrorSource, parseMiniMirrorYaml } from "../../provider/apt/minimirror";
import { parseQuery } from "../../provider/apt/query";
import { placeOf } from "../../provider/store/place";
import { AptMirror, type AptSigningArgs } from "../aptMirror";
import { claimPlaces } from "../claims";
import { MirrorVM } from "../mirrorVm";
import { failInput, readInput, yamlLine } from "./common";

const TYPE = "airgap:components:MiniMirror";
const SHOWN = "MiniMirror";

/** What the MiniMirror defaults to. */
export const MINI_MIRROR_DEFAULTS = {
    /** The host port mini-mirror's Helm chart exposes the mirror on. */
    port: 8888,
    /** mini-mirror's image serves `/srv` on 80. */
    containerPort: 80,
    image: "docker.io/library/nginx:1.27",
    architectures: ["amd64"],
    restart: "unless-stopped",
} as const;

/** Where the container serves the publish root from, as mini-mirror's image does. */
export const MINI_MIRROR_SERVE_DIR = "/srv";
/** Where the component's nginx configuration is uploaded in the container. */
export const MINI_MIRROR_NGINX_CONF = "/etc/airgap/nginx.conf";

export interface MiniMirrorTrustArgs {
    /** Armored public key(s) every source's Release may be signed with. Defaults to none. */
    key?: pulumi.Input<string>;
    /** A keyring file (.asc or binary .gpg) for every source. Defaults to none. */
    keyring?: pulumi.Input<string>;
    /**
     * Primary-key fingerprints that alone may verify the sources' Releases; needed when a
     * source's `source_key_url` is plain http://. Defaults to none (any key supplied).
     */
    keyFingerprints?: pulumi.Input<pulumi.Input<string>[]>;
}

export interface MiniMirrorContainerArgs {
    /**
     * An nginx image (any: the component gives it its whole configuration). Defaults to
     * "docker.io/library/nginx:1.27" (`MINI_MIRROR_DEFAULTS.image`).
     */
    image?: pulumi.Input<string>;
    /**
     * Pull the image with a `docker.RemoteImage`. Defaults to true; false uses an image the
     * node already has (loaded from the transfer media, say) by its name.
     */
    pullImage?: boolean;
    /** Container name. Defaults to the component name. */
    name?: pulumi.Input<string>;
    /** Host port the mirror is served on. Defaults to 8888 (mini-mirror's Helm chart: 8888→80). */
    port?: number;
    /** Address the host port is bound to. Defaults to "0.0.0.0" (every address). */
    ip?: pulumi.Input<string>;
    /**
     * "bridge" publishes `port` → 80 of the container; "host" runs nginx in the host's network
     * namespace listening on `port` itself (no port mapping). Defaults to "bridge".
     */
    networkMode?: "bridge" | "host";
    /** Docker restart policy. Defaults to "unless-stopped". */
    restart?: pulumi.Input<string>;
}

export interface MiniMirrorVmArgs {
    /** The qcow2 image to write (absolute path; its directory must exist). */
    output: pulumi.Input<string>;
    /** A bootable Debian cloud image. Defaults to none: a data disk holding the suites only. */
    baseImage?: pulumi.Input<string>;
}

export interface MiniMirrorArgs {
    /**
     * A mini-mirror `sources/` tree: `<prefix>/<name>/source.txt` (`source_url source_key_url
     * dist components...`) and `<prefix>/<name>/packages.txt` (one package query a line).
     * Exactly one of `sourcesDir` and `sourcesYaml`. Defaults to none (then `sourcesYaml`).
     */
    sourcesDir?: string;
    /**
     * A file in mini-mirror's YAML form (`name`, `url`, `key_url`, `components`, `subrepos[]`):
     * the prefix is `name`, one suite per `subrepos[].distribution`. Defaults to none (then `sourcesDir`).
     */
    sourcesYaml?: string;
    /** Existing directory the suites are published under, as `<publishRoot>/<prefix>/dists/<dist>`. */
    publishRoot: string;
    /** Signs every published Release, as mini-mirror's RELEASE_SIGN_KEY does. Pass the key as a secret. */
    signing: pulumi.Input<AptSigningArgs>;
    /** Keys for the upstream Releases besides each source's `source_key_url`. Defaults to none. */
    trust?: MiniMirrorTrustArgs;
    /** Defaults to ["amd64"] (`MINI_MIRROR_DEFAULTS.architectures`). */
    architectures?: pulumi.Input<pulumi.Input<string>[]>;
    /** Add the Depends/Pre-Depends closure. Defaults to true. */
    withDeps?: pulumi.Input<boolean>;
    /**
     * Directory of lock files, one per suite (`<prefix>_<dist>.lock.json`): the resolved
     * packages are pinned there and upstream is not asked again while the sources are unchanged.
     * Created by `pulumi up` when missing. Defaults to none (resolved from upstream on every run).
     */
    lockDir?: string;
    /** Origin and Label of the published Releases. Defaults to none. */
    origin?: pulumi.Input<string>;
    /** The nginx container serving `publishRoot`. Defaults to each field's default (nginx:1.27 on port 8888). */
    container?: MiniMirrorContainerArgs;
    /** Declare the nginx container. Defaults to true; false publishes the suites only. */
    serve?: boolean;
    /** Also build a MirrorVM image carrying the suites. Defaults to none. */
    vm?: MiniMirrorVmArgs;
}

/** One suite the component publishes, with where it was defined (for messages). */
export interface MiniMirrorSuite extends MiniMirrorSource {
    /** The child AptMirror's resource name. */
    resourceName: string;
    /** The file the source was read from. */
    file: string;
}

/**
 * The nginx configuration the container runs with: the publish root (mounted at `/srv`) with
 * directory listings, on `listen`. Self-contained (no distribution default site is read), so
 * any nginx image serves it the same way.
 */
export function miniMirrorNginxConf(listen: number): string {
    return [
        "worker_processes 1;",
        "pid /tmp/nginx.pid;",
        "error_log stderr;",
        "events { worker_connections 256; }",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        "    access_log /dev/stdout;",
        "    sendfile on;",
        "    client_body_temp_path /tmp/nginx-body;",
        "    proxy_temp_path /tmp/nginx-proxy;",
        "    fastcgi_temp_path /tmp/nginx-fastcgi;",
        "    uwsgi_temp_path /tmp/nginx-uwsgi;",
        "    scgi_temp_path /tmp/nginx-scgi;",
        "    server {",
        `        listen ${listen};`,
        `        root ${MINI_MIRROR_SERVE_DIR};`,
        "        autoindex on;",
        "    }",
        "}",
        "",
    ].join("\n");
}

/** `line N` of `file` for an error of parseMiniMirrorYaml, found from its argument and entry. */
function yamlErrorLine(text: string, err: AirgapError): number | undefined {
    const entry = /: entry (\d+): /.exec(err.message);
    if (entry === null) {
        return undefined;
    }
    const index = Number(entry[1]) - 1;
    const arg = err.argument ?? "";
    const pathOf: (string | number)[] = [];
    for (const m of arg.matchAll(/([A-Za-z_]+)|\[(\d+)\]/g)) {
        pathOf.push(m[1] !== undefined ? m[1] : Number(m[2]));
    }
    // A list of sources, or one source (parseMiniMirrorYaml reads both).
    const list = isSeq(parseDocument(text).contents);
    return yamlLine(text, list ? [index, ...pathOf] : pathOf);
}

/** Reads the YAML form; an error names the file and the line of the entry or field. */
function readYaml(file: string): MiniMirrorSource[] {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (cause) {
        throw new AirgapError("ERR_IO", `sourcesYaml: reading ${file}: ${(cause as Error).message}`, {
            argument: "sourcesYaml",
        });
    }
    try {
        return parseMiniMirrorYaml(text, file);
    } catch (err) {
        const e = err as AirgapError;
        const line = e.code === "ERR_PARSE" ? yamlErrorLine(text, e) : undefined;
        if (line === undefined) {
            throw err;
        }
        const message = e.message.startsWith(`${file}: `)
            ? `${file}:${line}: ${e.message.slice(file.length + 2)}`
            : e.message;
        throw new AirgapError(e.code, message, { argument: e.argument, line });
    }
}

/** Every line of each packages.txt must be a package query; an error names file and line. */
function checkPackagesTxt(dir: string, sources: readonly MiniMirrorSource[]): void {
    for (const s of sources) {
        const file = path.join(dir, s.prefix, s.name, "packages.txt");
        fs.readFileSync(file, "utf8")
            .split(/\r?\n/)
            .forEach((raw, i) => {
                const line = raw.replace(/#.*$/, "").trim();
                if (line === "") {
                    return;
                }
                try {
                    parseQuery(line);
                } catch (err) {
                    throw new AirgapError(
                        "ERR_PARSE",
                        `${file}:${i + 1}: "${line}" is not a package query (e.g. "nginx", "jq (>= 1.6)"): ${(err as Error).message}`,
                        { argument: file, line: i + 1 },
                    );
                }
            });
    }
}

/**
 * The suites of a mini-mirror definition, checked: a bad file is an error naming it and the
 * line; two sources of one prefix with the same distribution are refused, naming both.
 */
export function loadMiniMirrorSuites(
    name: string,
    args: Pick<MiniMirrorArgs, "sourcesDir" | "sourcesYaml">,
): MiniMirrorSuite[] {
    const given = [args.sourcesDir, args.sourcesYaml].filter((v) => v !== undefined).length;
    if (given !== 1) {
        throw new AirgapError(
            "ERR_INVALID_ARGUMENT",
            `sourcesDir: give exactly one of sourcesDir (a sources/ tree) and sourcesYaml (the YAML form)${given === 0 ? "" : ", not both"}`,
            { argument: "sourcesDir" },
        );
    }
    let suites: MiniMirrorSuite[];
    if (args.sourcesDir !== undefined) {
        const dir = args.sourcesDir;
        const sources = (() => {
            try {
                return loadMiniMirrorSources(dir);
            } catch (err) {
                const e = err as AirgapError;
                throw e.argument === "dir"
                    ? new AirgapError(e.code, `sourcesDir: ${e.message.replace(/^dir: /, "")}`, {
                          argument: "sourcesDir",
                      })
                    : err;
            }
        })();
        checkPackagesTxt(dir, sources);
        suites = sources.map((s) => ({
            ...s,
            resourceName: `${name}-${s.prefix}-${s.name}`,
            file: path.join(dir, s.prefix, s.name, "source.txt"),
        }));
    } else {
        const file = args.sourcesYaml!;
        suites = readYaml(file).map((s) => ({ ...s, resourceName: `${name}-${s.name}`, file }));
    }
    const seen = new Map<string, MiniMirrorSuite>();
    for (const s of suites) {
        const key = `${s.prefix}/dists/${s.distribution}`;
        const other = seen.get(key);
        if (other !== undefined) {
            throw new AirgapError(
                "ERR_CONFLICT",
                `${s.file}: ${s.prefix}/${s.name} publishes ${key}, as ${other.prefix}/${other.name} (${other.file}) does: give one of them another prefix`,
                { argument: args.sourcesDir !== undefined ? "sourcesDir" : "sourcesYaml" },
            );
        }
        seen.set(key, s);
    }
    return suites;
}

/** The lock file of a suite in `lockDir`. */
export function miniMirrorLockFile(lockDir: string, suite: Pick<MiniMirrorSource, "prefix" | "distribution">): string {
    return path.join(lockDir, `${suite.prefix}_${suite.distribution}.lock.json`);
}

/**
 * OpenStack-Helm's mini-mirror as a component: each source of a `sources/` tree (or of its YAML
 * form) becomes a signed AptMirror published under `<publishRoot>/<prefix>/dists/<dist>` (the
 * suites of one prefix share its pool), served by an nginx container on port 8888 as the
 * mini-mirror chart does (`@pulumi/docker`), and optionally carried by a MirrorVM image.
 *
 * A bad source file fails the program at preview, naming the file and line, before any
 * resource is declared.
 */
export class MiniMirror extends pulumi.ComponentResource {
    /** The suites, as read from the sources. */
    public readonly suites: MiniMirrorSuite[];
    /** One AptMirror per suite, in the order of `suites`. */
    public readonly mirrors: AptMirror[];
    /** The nginx container (undefined with `serve: false`). */
    public readonly container?: docker.Container;
    /** The pulled image (with `container.pullImage`, the default). */
    public readonly image?: docker.RemoteImage;
    /** The mirror VM image (with `vm`). */
    public readonly vm?: MirrorVM;
    /** `<prefix>/<dist>` → the suite's packages, `name/arch` → version. */
    public readonly packages: pulumi.Output<Record<string, Record<string, string>>>;
    /** Armored public key clients verify the suites with. */
    public readonly publicKey: pulumi.Output<string>;
    /** The host port the mirror is served on (undefined with `serve: false`). */
    public readonly port?: number;
    /** `deb` lines for clients, `http://<host>:<port>/<prefix> <dist> <components>` with a `{host}` placeholder. */
    public readonly aptLines: string[];

    constructor(name: string, args: MiniMirrorArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TYPE, name, {}, opts);
        const suites = readInput(SHOWN, name, () => loadMiniMirrorSuites(name, args));
        const root = args.publishRoot;
        if (typeof root !== "string" || root === "") {
            failInput(SHOWN, name, new Error("publishRoot: must be an existing directory"), "publishRoot");
        }
        const prefixes = [...new Set(suites.map((s) => s.prefix))];
        claimPlaces(
            `MiniMirror "${name}"`,
            "publishRoot",
            prefixes.map((p) => `${placeOf(root)}/${p}`),
            "give each MiniMirror its own publishRoot or prefixes",
        );
        const container = args.container ?? {};
        const networkMode = container.networkMode ?? "bridge";
        if (networkMode !== "bridge" && networkMode !== "host") {
            failInput(SHOWN, name, new Error(`container.networkMode: "${networkMode}" is not "bridge" or "host"`));
        }
        const port = container.port ?? MINI_MIRROR_DEFAULTS.port;
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
            failInput(SHOWN, name, new Error(`container.port: ${port} is not a port number (1-65535)`));
        }
        if (args.vm !== undefined && args.vm.output === undefined) {
            failInput(SHOWN, name, new Error("vm.output: the qcow2 image to write is required with vm"));
        }

        if (args.lockDir !== undefined && !pulumi.runtime.isDryRun()) {
            // An update writes the lock files there; a preview writes nothing.
            fs.mkdirSync(args.lockDir, { recursive: true });
        }
        this.suites = suites;
        this.mirrors = suites.map(
            (s) =>
                new AptMirror(
                    s.resourceName,
                    {
                        source: {
                            url: s.url,
                            distribution: s.distribution,
                            components: s.components,
                            architectures: args.architectures ?? [...MINI_MIRROR_DEFAULTS.architectures],
                            ...(s.keyUrl === undefined ? {} : { keyUrl: s.keyUrl }),
                            ...(args.trust?.key === undefined ? {} : { key: args.trust.key }),
                            ...(args.trust?.keyring === undefined ? {} : { keyring: args.trust.keyring }),
                            ...(args.trust?.keyFingerprints === undefined
                                ? {}
                                : { keyFingerprints: args.trust.keyFingerprints }),
                        },
                        packages: s.packages,
                        withDeps: args.withDeps ?? true,
                        publish: {
                            root,
                            prefix: s.prefix,
                            ...(args.origin === undefined ? {} : { origin: args.origin, label: args.origin }),
                        },
                        signing: args.signing,
                        ...(args.lockDir === undefined ? {} : { lockFile: miniMirrorLockFile(args.lockDir, s) }),
                    },
                    { parent: this },
                ),
        );

        if (args.serve ?? true) {
            const pull = container.pullImage ?? true;
            const imageName = container.image ?? MINI_MIRROR_DEFAULTS.image;
            if (pull) {
                this.image = new docker.RemoteImage(
                    `${name}-image`,
                    { name: imageName, keepLocally: true },
                    { parent: this },
                );
            }
            const listen = networkMode === "host" ? port : MINI_MIRROR_DEFAULTS.containerPort;
            this.port = port;
            this.container = new docker.Container(
                `${name}-nginx`,
                {
                    name: container.name ?? name,
                    image: this.image !== undefined ? this.image.imageId : imageName,
                    command: ["nginx", "-c", MINI_MIRROR_NGINX_CONF, "-g", "daemon off;"],
                    uploads: [{ file: MINI_MIRROR_NGINX_CONF, content: miniMirrorNginxConf(listen) }],
                    volumes: [{ hostPath: path.resolve(root), containerPath: MINI_MIRROR_SERVE_DIR, readOnly: true }],
                    networkMode,
                    ...(networkMode === "bridge"
                        ? {
                              ports: [
                                  {
                                      internal: MINI_MIRROR_DEFAULTS.containerPort,
                                      external: port,
                                      ip: container.ip ?? "0.0.0.0",
                                      protocol: "tcp",
                                  },
                              ],
                          }
                        : {}),
                    restart: container.restart ?? MINI_MIRROR_DEFAULTS.restart,
                    labels: [{ label: "airgap.mini-mirror", value: name }],
                },
                // Serves the suites once they are published (and again after each change).
                { parent: this, dependsOn: this.mirrors },
            );
        }

        if (args.vm !== undefined) {
            this.vm = new MirrorVM(
                `${name}-vm`,
                {
                    output: args.vm.output,
                    apt: this.mirrors,
                    ...(args.vm.baseImage === undefined ? {} : { baseImage: args.vm.baseImage }),
                },
                { parent: this },
            );
        }

        this.aptLines = suites.map(
            (s) => `deb http://{host}:${port}/${s.prefix} ${s.distribution} ${s.components.join(" ")}`,
        );
        this.packages = pulumi
            .all(this.mirrors.map((m) => m.packages))
            .apply((locks) => Object.fromEntries(suites.map((s, i) => [`${s.prefix}/${s.distribution}`, locks[i]])));
        this.publicKey = this.mirrors[0]!.publicKey;
        this.registerOutputs({
            packages: this.packages,
            publicKey: this.publicKey,
            port: this.port,
            aptLines: this.aptLines,
            ...(this.container === undefined ? {} : { containerName: this.container.name }),
            ...(this.vm === undefined ? {} : { vmPath: this.vm.path }),
        });
    }
}
