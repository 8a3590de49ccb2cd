import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { inputsDigest } from "../../../sdk/lock";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import type { Loose } from "./mocks";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, Loose>;
    dependencies: string[];
    parent: string;
}

const registered = new Map<string, Registered>();
let preview = false;

function outputsOf(type: string, name: string, inputs: Record<string, Loose>): Record<string, Loose> {
    switch (type) {
        case "docker:index/remoteImage:RemoteImage":
            return { ...inputs, imageId: `sha256:id-of-${inputs.name}`, repoDigest: `${inputs.name}@sha256:0` };
        case "pulumi-nodejs:dynamic/airgap:AptMirror":
            return { ...inputs, publicKey: `KEY OF ${name}` };
        case "pulumi-nodejs:dynamic/airgap:ImageMirror":
            return {
                ...inputs,
                registries: [
                    { source: "quay.io", mirrors: ["drivetrain.site:5000/quay.io"], mirrorByDigestOnly: true },
                ],
            };
        case "pulumi-nodejs:dynamic/airgap:MirrorVM":
            return {
                ...inputs,
                urls: {
                    apt: "http://10.0.0.9",
                    registry: "10.0.0.9:5000",
                    git: "http://10.0.0.9:8088",
                    files: "http://10.0.0.9:8078",
                },
                hostConfig: {
                    registries: [
                        {
                            source: "docker-prod-local.artifactory.mirantis.com",
                            mirrors: ["10.0.0.9:5000/docker-prod-local.artifactory.mirantis.com"],
                            mirrorByDigestOnly: true,
                            insecure: true,
                        },
                    ],
                    apt: [
                        {
                            name: "mirror-ubuntu",
                            uris: ["http://10.0.0.9/ubuntu"],
                            suites: ["bionic"],
                            components: ["main", "universe"],
                            signedBy: "VM KEY",
                        },
                    ],
                },
            };
        default:
            return inputs;
    }
}

async function mocks(): Promise<void> {
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const found = registered.get(args.name);
                if (found !== undefined) {
                    found.inputs = args.inputs;
                    found.type = args.type;
                }
                return { id: `${args.name}-id`, state: outputsOf(args.type, args.name, args.inputs) };
            },
            call: (args) => args.inputs,
        },
        "project",
        "stack",
        preview,
    );
    // The mocks see no dependencies or parents: the register requests do.
    const monitor = pulumi.runtime.getMonitor() as Loose;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: Loose, callback: Loose) => {
        registered.set(req.getName(), {
            type: req.getType(),
            name: req.getName(),
            inputs: {},
            dependencies: req.getDependenciesList(),
            parent: req.getParent(),
        });
        return original(req, callback);
    };
}

const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply(resolve));

/** Waits until every registration so far has reached the mocks. */
async function settled(...outputs: pulumi.Output<unknown>[]): Promise<void> {
    await Promise.all(outputs.map(value));
    await new Promise((r) => setTimeout(r, 50));
}

function only(type: string): Registered[] {
    return [...registered.values()].filter((r) => r.type === type);
}

const containerOf = (name: string) => {
    const r = registered.get(name);
    assert.ok(r, `no resource ${name}; registered: ${[...registered.keys()].join(", ")}`);
    return r;
};

describe("DriveTrainMirrors", function () {
    this.timeout(60_000);
    let dir: string;
    let mod: typeof import("../../../sdk/components/driveTrain");

    beforeEach(async () => {
        registered.clear();
        preview = false;
        await mocks();
        mod = await import("../../../sdk/components/driveTrain");
        dir = await makeTempDir("drivetrain-unit");
    });

    after(cleanupAll);

    /** Lock files that pin what the mirrors resolve, so that nothing is contacted. */
    function aptLock(file: string, url: string, distribution: string, queries: string[], packages: object): string {
        const inputs = inputsDigest({
            url,
            distribution,
            components: ["main"],
            architectures: ["amd64"],
            queries,
            withDeps: true,
            followRecommends: false,
        });
        fs.writeFileSync(file, JSON.stringify({ version: 1, inputs, packages }));
        return file;
    }
    function imageLock(file: string, images: string[], source: string, digests: Record<string, string>): string {
        const inputs = inputsDigest({ images: [...images].sort(), source });
        fs.writeFileSync(file, JSON.stringify({ version: 1, inputs, images: digests }));
        return file;
    }

    describe("online", () => {
        let params: Loose;
        let component: InstanceType<typeof mod.DriveTrainMirrors>;
        const image = "quay.io/mcp/salt:2019.2.0";

        beforeEach(async () => {
            const aptRoot = path.join(dir, "apt");
            const lock = aptLock(
                path.join(dir, "ubuntu.lock.json"),
                "http://up.example/ubuntu",
                "bionic",
                ["salt-minion"],
                {
                    "salt-minion/all": "2017.7.8",
                },
            );
            const images = imageLock(path.join(dir, "images.lock.json"), [image], "docker://", {
                [image]: `sha256:${"a".repeat(64)}`,
            });
            component = new mod.DriveTrainMirrors("dt", {
                address: "drivetrain.site",
                aptRoot,
                filesRoot: path.join(dir, "files"),
                registryRoot: path.join(dir, "registry"),
                gitRoot: path.join(dir, "git"),
                apt: [
                    {
                        name: "ubuntu",
                        source: { url: "http://up.example/ubuntu", distribution: "bionic", key: "UPSTREAM KEY" },
                        packages: ["salt-minion"],
                        lockFile: lock,
                    },
                ],
                signing: { privateKey: "PRIVATE" },
                images: [image],
                imageLockFile: images,
                nodes: [
                    { name: "ctl01", target: { local: { root: path.join(dir, "ctl01") } } },
                    { name: "cmp01", target: { local: { root: path.join(dir, "cmp01") } } },
                ],
            });
            const yamlText = await value(component.parameters);
            params = parse(yamlText);
            await settled(component.urls, ...Object.values(component.nodes).map((n) => n.files));
        });

        it("declares the nginx container: APT tree on 80, files on 8078, read-only volumes, its config uploaded", () => {
            const c = containerOf("dt-apt-files");
            assert.equal(c.type, "docker:index/container:Container");
            assert.equal(c.inputs.name, "dt-apt-files");
            assert.equal(c.inputs.image, "sha256:id-of-nginx:1.27");
            assert.equal(c.inputs.restart, "always");
            assert.equal(c.inputs.networkMode, "bridge");
            assert.deepEqual(
                c.inputs.ports.map((p: Loose) => [p.internal, p.external]),
                [
                    [80, 80],
                    [8078, 8078],
                ],
            );
            assert.deepEqual(
                c.inputs.volumes.map((v: Loose) => [v.hostPath, v.containerPath, v.readOnly]),
                [
                    [path.join(dir, "apt"), "/srv/apt", true],
                    [path.join(dir, "files"), "/srv/files", true],
                ],
            );
            assert.equal(c.inputs.uploads.length, 1);
            assert.equal(c.inputs.uploads[0].file, "/etc/nginx/nginx.conf");
            const conf = c.inputs.uploads[0].content as string;
            assert.match(conf, /listen 80;\n\s+root \/srv\/apt;/);
            assert.match(conf, /listen 8078;\n\s+root \/srv\/files;/);
            // A complete configuration: nothing of the image's own default site is included.
            assert.match(conf, /^events \{/m);
            assert.doesNotMatch(conf, /conf\.d|sites-enabled/);
            assert.equal(c.inputs.command, undefined);
            const pulled = containerOf("dt-nginx-image");
            assert.equal(pulled.inputs.name, "nginx:1.27");
            assert.equal(pulled.inputs.keepLocally, true);
            assert.ok(
                c.dependencies.includes(
                    `urn:pulumi:stack::project::airgap:components:DriveTrainMirrors$docker:index/remoteImage:RemoteImage::dt-nginx-image`,
                ),
                c.dependencies.join(),
            );
        });

        it("declares the registry on 5000 with its storage and delete enabled, and git on 8088", () => {
            const r = containerOf("dt-registry");
            assert.equal(r.inputs.image, "sha256:id-of-registry:2");
            assert.deepEqual(
                r.inputs.ports.map((p: Loose) => [p.internal, p.external]),
                [[5000, 5000]],
            );
            assert.deepEqual(r.inputs.envs, [
                "REGISTRY_HTTP_ADDR=0.0.0.0:5000",
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/registry",
                "REGISTRY_STORAGE_DELETE_ENABLED=true",
            ]);
            assert.deepEqual(
                r.inputs.volumes.map((v: Loose) => [v.hostPath, v.containerPath, v.readOnly ?? false]),
                [[path.join(dir, "registry"), "/var/lib/registry", false]],
            );
            const g = containerOf("dt-git");
            assert.equal(g.inputs.image, "sha256:id-of-nginx:1.27");
            assert.deepEqual(
                g.inputs.ports.map((p: Loose) => [p.internal, p.external]),
                [[8088, 8088]],
            );
            assert.deepEqual(g.inputs.volumes[0], {
                hostPath: path.join(dir, "git"),
                containerPath: "/srv/git",
                readOnly: true,
            });
            assert.match(g.inputs.uploads[0].content, /listen 8088;\n\s+root \/srv\/git;/);
            assert.equal(only("docker:index/container:Container").length, 3);
            assert.equal(only("docker:index/remoteImage:RemoteImage").length, 2);
        });

        it("mirrors each repository under the APT root, signed, and the images into the site registry after it runs", () => {
            const apt = containerOf("dt-ubuntu");
            assert.equal(apt.type, "pulumi-nodejs:dynamic/airgap:AptMirror");
            // The lock as the provider receives it: a `name/arch version` line each.
            assert.equal(apt.inputs.packages, "salt-minion/all 2017.7.8\n");
            assert.equal(apt.inputs.publish.root, path.join(dir, "apt"));
            assert.equal(apt.inputs.publish.prefix, "ubuntu");
            assert.equal(apt.inputs.source.url, "http://up.example/ubuntu");
            assert.deepEqual(apt.inputs.source.components, ["main"]);
            assert.equal(apt.inputs.signing.privateKey ?? apt.inputs.signing.value?.privateKey, "PRIVATE");
            const img = containerOf("dt-images");
            assert.equal(img.inputs.destination, "docker://drivetrain.site:5000");
            assert.deepEqual(img.inputs.images, { [image]: `sha256:${"a".repeat(64)}` });
            assert.deepEqual(img.inputs.tls.insecureRegistries, ["drivetrain.site:5000"]);
            assert.ok(
                img.dependencies.some((u) => u.endsWith("::dt-registry")),
                img.dependencies.join(),
            );
            for (const r of [apt, img, containerOf("dt-registry")]) {
                assert.match(r.parent, /DriveTrainMirrors::dt$/);
            }
        });

        it("configures every node: registries drop-in from the image mirror, APT sources with the mirror's key", () => {
            for (const node of ["ctl01", "cmp01"]) {
                const h = containerOf(`dt-${node}`);
                assert.equal(h.type, "pulumi-nodejs:dynamic/airgap:HostMirrorConfig");
                assert.deepEqual(h.inputs.target, { local: { root: path.join(dir, node) } });
                assert.equal(h.inputs.name, "drivetrain");
                assert.deepEqual(h.inputs.registries, [
                    { source: "quay.io", mirrors: ["drivetrain.site:5000/quay.io"], mirrorByDigestOnly: true },
                ]);
                assert.deepEqual(h.inputs.apt, [
                    {
                        name: "drivetrain-ubuntu",
                        uris: ["http://drivetrain.site/ubuntu"],
                        suites: ["bionic"],
                        components: ["main"],
                        signedBy: "KEY OF dt-ubuntu",
                    },
                ]);
                for (const dep of ["dt-ubuntu", "dt-images", "dt-apt-files", "dt-registry", "dt-git"]) {
                    assert.ok(
                        h.dependencies.some((u) => u.endsWith(`::${dep}`)),
                        `${node} waits for ${dep}: ${h.dependencies}`,
                    );
                }
            }
        });

        it("outputs the reclass parameters: linux_system_repo_url, mcp_docker_registry and a repo per mirror", async () => {
            assert.deepEqual(params.parameters._param, {
                mcp_version: "2019.2.0",
                local_repo_url: "drivetrain.site",
                linux_system_repo_url: "http://drivetrain.site",
                mcp_docker_registry: "drivetrain.site:5000",
                docker_registry: "drivetrain.site:5000",
                local_files_url: "http://drivetrain.site:8078",
                local_git_url: "http://drivetrain.site:8088",
            });
            assert.deepEqual(params.parameters.linux.system.repo, {
                mcp_local_ubuntu: {
                    source: "deb [arch=amd64] http://drivetrain.site/ubuntu bionic main",
                    architectures: "amd64",
                    key: "KEY OF dt-ubuntu",
                    default: true,
                    clean_file: true,
                },
            });
            assert.deepEqual(await value(component.urls), {
                apt: "http://drivetrain.site",
                registry: "drivetrain.site:5000",
                files: "http://drivetrain.site:8078",
                git: "http://drivetrain.site:8088",
            });
        });
    });

    it("with host networking publishes no ports and listens on the configured ones", async () => {
        const c = new mod.DriveTrainMirrors("hostnet", {
            address: "10.1.1.1",
            networkMode: "host",
            ports: { apt: 8080, registry: 5001 },
            nginxCommand: ["nginx", "-g", "daemon off;"],
            aptRoot: path.join(dir, "apt"),
        });
        const params = parse(await value(c.parameters));
        await settled(c.urls);
        const nginx = containerOf("hostnet-apt-files");
        assert.equal(nginx.inputs.networkMode, "host");
        assert.equal(nginx.inputs.ports, undefined);
        assert.match(nginx.inputs.uploads[0].content, /listen 8080;/);
        assert.deepEqual(nginx.inputs.command, ["nginx", "-g", "daemon off;"]);
        assert.equal(containerOf("hostnet-registry").inputs.command, undefined);
        assert.deepEqual(containerOf("hostnet-registry").inputs.envs[0], "REGISTRY_HTTP_ADDR=0.0.0.0:5001");
        assert.equal(registered.get("hostnet-git"), undefined);
        assert.equal(params.parameters._param.linux_system_repo_url, "http://10.1.1.1:8080");
        assert.equal(params.parameters._param.mcp_docker_registry, "10.1.1.1:5001");
        assert.equal(params.parameters._param.local_git_url, undefined);
    });

    describe("offline", () => {
        it("from a MirrorVM: no containers, no mirrors, nodes and parameters from the VM", async () => {
            const { MirrorVM } = await import("../../../sdk/mirrorVm");
            const vm = new MirrorVM("mirror-image", { output: path.join(dir, "mirror.qcow2") });
            const c = new mod.DriveTrainMirrors("off", {
                mode: "offline",
                address: "10.0.0.9",
                offline: { mirrorVm: vm },
                nodes: [{ name: "ctl01", target: { local: { root: path.join(dir, "n1") } } }],
            });
            const params = parse(await value(c.parameters));
            await settled(c.nodes.ctl01.files);
            assert.equal(only("docker:index/container:Container").length, 0);
            assert.equal(only("pulumi-nodejs:dynamic/airgap:AptMirror").length, 0);
            assert.equal(only("pulumi-nodejs:dynamic/airgap:ImageMirror").length, 0);
            const h = containerOf("off-ctl01");
            assert.deepEqual(h.inputs.apt, [
                {
                    name: "drivetrain-mirror-ubuntu",
                    uris: ["http://10.0.0.9/ubuntu"],
                    suites: ["bionic"],
                    components: ["main", "universe"],
                    signedBy: "VM KEY",
                },
            ]);
            assert.equal(h.inputs.registries[0].mirrors[0], "10.0.0.9:5000/docker-prod-local.artifactory.mirantis.com");
            assert.ok(h.dependencies.some((u) => u.endsWith("::mirror-image")));
            assert.equal(params.parameters._param.linux_system_repo_url, "http://10.0.0.9");
            assert.equal(params.parameters._param.mcp_docker_registry, "10.0.0.9:5000");
            assert.equal(
                params.parameters.linux.system.repo["mcp_local_mirror-ubuntu"].source,
                "deb [arch=amd64] http://10.0.0.9/ubuntu bionic main universe",
            );
        });

        it("from a lock and an archive: the same containers, images from the archive pinned by the lock", async () => {
            const archive = `oci-archive:${path.join(dir, "images.tar")}`;
            const image = "quay.io/mcp/salt:2019.2.0";
            const lock = imageLock(path.join(dir, "carried.lock.json"), [image], archive, {
                [image]: `sha256:${"b".repeat(64)}`,
            });
            const c = new mod.DriveTrainMirrors("carried", {
                mode: "offline",
                address: "dt.site",
                offline: {
                    archive: {
                        images: archive,
                        imageLockFile: lock,
                        aptRoot: path.join(dir, "carried-apt"),
                        aptPublicKey: "CARRIED KEY",
                    },
                },
                apt: [{ name: "ubuntu", distribution: "bionic", components: ["main", "restricted"] }],
            });
            const params = parse(await value(c.parameters));
            await settled(c.urls);
            assert.equal(only("pulumi-nodejs:dynamic/airgap:AptMirror").length, 0);
            const img = containerOf("carried-images");
            assert.equal(img.inputs.source, archive);
            assert.equal(img.inputs.destination, "docker://dt.site:5000");
            assert.deepEqual(img.inputs.images, { [image]: `sha256:${"b".repeat(64)}` });
            assert.equal(containerOf("carried-apt-files").inputs.volumes[0].hostPath, path.join(dir, "carried-apt"));
            assert.deepEqual(params.parameters.linux.system.repo.mcp_local_ubuntu, {
                source: "deb [arch=amd64] http://dt.site/ubuntu bionic main restricted",
                architectures: "amd64",
                key: "CARRIED KEY",
                default: true,
                clean_file: true,
            });
        });
    });

    describe("bad input", () => {
        const cases: [string, Partial<import("../../../sdk/components/driveTrain").DriveTrainMirrorsArgs>, RegExp][] = [
            [
                "offline without a MirrorVM or archive",
                { mode: "offline" },
                /^DriveTrainMirrors "bad": offline: offline mode needs offline\.mirrorVm .* or offline\.archive/,
            ],
            [
                "offline archive without its lock",
                {
                    mode: "offline",
                    offline: {
                        archive: { images: "oci-archive:/x.tar", imageLockFile: "", aptRoot: "/a", aptPublicKey: "" },
                    },
                },
                /offline\.archive\.imageLockFile: is required/,
            ],
            [
                "offline archive whose lock is missing",
                {
                    mode: "offline",
                    offline: {
                        archive: {
                            images: "oci-archive:/x.tar",
                            imageLockFile: "/nonexistent/lock.json",
                            aptRoot: "/a",
                            aptPublicKey: "",
                        },
                    },
                },
                /offline\.archive\.imageLockFile: \/nonexistent\/lock\.json does not exist/,
            ],
            [
                "online repository without a source",
                { apt: [{ name: "ubuntu", packages: ["x"] }], signing: { privateKey: "k" } },
                /apt\[0\]\.source: is required in online mode/,
            ],
            [
                "online repositories unsigned",
                { apt: [{ name: "u", packages: ["x"], source: { url: "http://u", distribution: "b" } }] },
                /signing: is required/,
            ],
            [
                "two repositories of one name",
                {
                    mode: "offline",
                    offline: { mirrorVm: {} as Loose },
                    apt: [
                        { name: "u", distribution: "b" },
                        { name: "u", distribution: "b" },
                    ],
                },
                /apt\[1\]\.name: "u" is listed twice/,
            ],
            ["a bad port", { ports: { registry: 70000 } }, /ports\.registry: must be a TCP port/],
            ["a bad mode", { mode: "sideways" as Loose }, /mode: must be "online" or "offline"/],
        ];
        for (const [what, args, message] of cases) {
            it(`${what} is refused with the argument named, before any child`, () => {
                registered.clear();
                assert.throws(
                    () => new mod.DriveTrainMirrors("bad", { address: "a", ...args }),
                    (err: Error) => {
                        assert.match(err.message, message);
                        return true;
                    },
                );
                assert.equal(only("docker:index/container:Container").length, 0);
            });
        }
    });
});
