/**
 * The MCP local mirrors of one cloud, as a deployment repository declares them.
 *
 *   pulumi config set mode online               # or offline
 *   pulumi config set --secret mirrorSigningKey "$(cat signing-key.asc)"
 *   pulumi preview --diff                        # packages and images that would change
 *   pulumi up                                    # sync, serve, configure the nodes
 *   pulumi stack output parameters > classes/cluster/<cluster>/infra/mirrors.yml
 *
 * Configuration (all optional but the signing key online):
 *
 *   mode                online | offline                          online
 *   address             the DriveTrain node as the cluster sees it  cfg01.mcp.local
 *   ubuntuUrl           upstream of the "ubuntu" repository         http://mirror.example/ubuntu
 *   ubuntuKeyring       its keyring                                 /usr/share/keyrings/ubuntu-archive-keyring.gpg
 *   saltUrl             upstream of the "saltstack" repository      http://repo.example/apt/ubuntu/18.04/amd64/2017.7
 *   saltKey             its armored key (a file)                    salt.asc
 *   images              JSON list of the MCP images                 the list below
 *   nodes               JSON list of {name, root}                   none (e.g. [{"name":"ctl01","root":"/"}])
 *   mirrorImage         offline: the mirror qcow2 to write           /var/lib/mirror/mcp-mirror.qcow2
 *   baseImage           offline: bootable cloud image for it         none (data disk)
 */
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { DriveTrainMirrors, MirrorVM } from "pulumi-airgap";

const config = new pulumi.Config();
const mode = (config.get("mode") ?? "online") as "online" | "offline";
const address = config.get("address") ?? "cfg01.mcp.local";
const nodes = (config.getObject<{ name: string; root: string }[]>("nodes") ?? []).map((n) => ({
    name: n.name,
    target: { local: { root: n.root } },
}));
const images = config.getObject<string[]>("images") ?? [
    "docker-prod-local.docker.mirantis.net/mirantis/cicd/jenkins:2019.2.0",
    "docker-prod-local.docker.mirantis.net/mirantis/cicd/gerrit:2019.2.0",
    "docker-prod-local.docker.mirantis.net/mirantis/cicd/mysql:2019.2.0",
];

function mirrors(): DriveTrainMirrors {
    if (mode === "offline") {
        // The offline mirror image: built where the mirrors are (the connected side), carried
        // in and booted; no upstream is contacted here.
        const vm = new MirrorVM("mcp-mirror", {
            output: config.get("mirrorImage") ?? "/var/lib/mirror/mcp-mirror.qcow2",
            baseImage: config.get("baseImage"),
            address,
        });
        return new DriveTrainMirrors("mcp", { mode, address, offline: { mirrorVm: vm }, nodes });
    }
    return new DriveTrainMirrors("mcp", {
        address,
        apt: [
            {
                name: "ubuntu",
                source: {
                    url: config.get("ubuntuUrl") ?? "http://mirror.example/ubuntu",
                    distribution: "bionic",
                    components: ["main", "universe"],
                    keyring: config.get("ubuntuKeyring") ?? "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
                },
                components: ["main", "universe"],
                packages: ["salt-minion", "python-apt", "ntp", "openssh-server"],
                lockFile: "ubuntu.lock.json",
            },
            {
                name: "saltstack",
                source: {
                    url: config.get("saltUrl") ?? "http://repo.example/apt/ubuntu/18.04/amd64/2017.7",
                    distribution: "bionic",
                    key: fs.readFileSync(config.get("saltKey") ?? "salt.asc", "utf8"),
                },
                packages: ["salt-master", "salt-minion", "salt-common"],
                lockFile: "saltstack.lock.json",
            },
        ],
        signing: { privateKey: config.requireSecret("mirrorSigningKey") },
        images,
        imageLockFile: "images.lock.json",
        gitRoot: "/srv/volumes/git",
        nodes,
    });
}

const mcp = mirrors();

/** The reclass parameters to commit into the cluster model. */
export const parameters = mcp.parameters;
export const urls = mcp.urls;
