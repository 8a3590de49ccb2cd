import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { checkServedPath, domainComponent, vmImages } from "../../../provider/vm/content";
import {
    hostConfigOf,
    type MirrorVmSpec,
    placeOfOutput,
    urlsOf,
    validateMirrorVmSpec,
} from "../../../provider/vm/mirror";
import {
    checkNetwork,
    checkServices,
    DEFAULT_SERVICES,
    renderNetworkConfig,
    renderUserData,
} from "../../../provider/vm/services";

const digest = `sha256:${"a".repeat(64)}`;
const tool = `registry.local:5000/team/tool@sha256:${"b".repeat(64)}`;

function argumentOf(fn: () => unknown): string | undefined {
    try {
        fn();
    } catch (err) {
        return (err as { argument?: string }).argument;
    }
    return undefined;
}

describe("MirrorVM inputs", () => {
    let dir: string;
    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "vm-inputs-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const spec = (extra: Partial<MirrorVmSpec>): MirrorVmSpec => ({
        name: "apt01",
        output: path.join(dir, "mirror.qcow2"),
        apt: [],
        images: [],
        files: [],
        git: [],
        ...extra,
    });

    it("names each bad argument", async () => {
        const problems = await validateMirrorVmSpec(
            spec({
                output: "mirror.qcow2",
                services: { aptPort: 0, gitPort: 5000 },
                network: { address: "10.0.0.10" },
                sshAuthorizedKeys: ["not a key"],
                hostname: "bad_name!",
                maxSize: "12 parsecs",
                files: [{ source: "relative", path: "../up" }],
                git: [{ source: path.join(dir, "absent.git"), path: "model.git" }],
            }),
        );
        const args = problems.map((p) => p.argument).sort();
        assert.deepEqual(args, [
            "files[0].path",
            "files[0].source",
            "git[0].source",
            "hostname",
            "maxSize",
            "network.address",
            "output",
            "services.aptPort",
            "sshAuthorizedKeys[0]",
        ]);
        assert.deepEqual(await validateMirrorVmSpec(spec({})), []);
    });

    it("refuses two ports alike, and a gateway or DNS server that is not an address", () => {
        assert.equal(
            argumentOf(() => checkServices({ ...DEFAULT_SERVICES, gitPort: 80 })),
            "services.gitPort",
        );
        assert.equal(
            argumentOf(() => checkServices({ ...DEFAULT_SERVICES, filesPort: 70000 })),
            "services.filesPort",
        );
        assert.equal(
            argumentOf(() => checkNetwork({ address: "10.0.0.10/24", gateway: "router" })),
            "network.gateway",
        );
        assert.equal(
            argumentOf(() => checkNetwork({ address: "10.0.0.10/24", dns: ["10.0.0.1", "ns1"] })),
            "network.dns[1]",
        );
        assert.equal(
            argumentOf(() => checkNetwork({ address: "10.0.0.10/33" })),
            "network.address",
        );
        checkNetwork({ address: "fd00::10/64", gateway: "fd00::1", dns: ["fd00::1"] });
    });

    it("serves paths below the service root only", () => {
        for (const bad of ["", "/abs", "../up", "a/../b", ".hidden", "a//b", "a b"]) {
            assert.equal(
                argumentOf(() => checkServedPath("files[0].path", bad)),
                "files[0].path",
                bad,
            );
        }
        assert.equal(checkServedPath("files[0].path", "images/qcow/"), "images/qcow");
    });

    it("spells an output one way, whatever the path", () => {
        fs.mkdirSync(path.join(dir, "images"), { recursive: true });
        fs.symlinkSync(path.join(dir, "images"), path.join(dir, "link"));
        const want = path.join(fs.realpathSync(dir), "images", "m.qcow2");
        assert.equal(placeOfOutput(path.join(dir, "images", ".", "m.qcow2")), want);
        assert.equal(placeOfOutput(path.join(dir, "link", "m.qcow2")), want);
        assert.equal(placeOfOutput(`${dir}//images/../images/m.qcow2`), want);
    });

    it("names images in the VM's registry by their source registry, and points hosts at it", () => {
        const images = vmImages([
            {
                images: { "quay.io/org/app:1.0": digest, [tool]: digest },
                mirrored: {
                    "quay.io/org/app:1.0": `oci:/srv/layout:quay.io/org/app:1.0@${digest}`,
                    [tool]: `mirror:5000/team/tool@${digest}`,
                },
            },
        ]);
        assert.deepEqual(
            images.map((i) => [i.repository, i.tag]),
            [
                ["quay.io/org/app", "1.0"],
                ["registry.local-5000/team/tool", undefined],
            ],
        );
        assert.equal(domainComponent("[fd00::1]:5000"), "fd00--1-5000");
        const s = spec({
            images: [
                { images: { "quay.io/org/app:1.0": digest }, mirrored: { "quay.io/org/app:1.0": `m/x@${digest}` } },
            ],
            network: { address: "10.0.0.10/24" },
            services: { registryPort: 5001, aptPort: 8080 },
        });
        assert.deepEqual(urlsOf(s), {
            apt: "http://10.0.0.10:8080/",
            registry: "10.0.0.10:5001",
            git: "http://10.0.0.10:8088/",
            files: "http://10.0.0.10:8078/",
        });
        const hc = hostConfigOf(s, [
            {
                root: "/srv",
                prefix: "debian-security",
                distribution: "bookworm-security",
                publicKey: "KEY",
                components: ["main"],
                architectures: ["amd64"],
            },
        ]);
        assert.deepEqual(hc.registries, [
            { source: "quay.io", mirrors: ["10.0.0.10:5001/quay.io"], mirrorByDigestOnly: true, insecure: true },
        ]);
        assert.deepEqual(hc.apt, [
            {
                name: "apt01-debian-security-bookworm-security",
                uris: ["http://10.0.0.10:8080/debian-security"],
                suites: ["bookworm-security"],
                components: ["main"],
                signedBy: "KEY",
            },
        ]);
    });

    it("renders a cloud-init seed that mounts the data by label and a static network", () => {
        const userData = renderUserData({ hostname: "apt01", sshAuthorizedKeys: ["ssh-ed25519 AAAA op@site"] });
        assert.ok(userData.startsWith("#cloud-config\n"));
        const doc = parse(userData) as { mounts: string[][]; ssh_authorized_keys: string[]; runcmd: string[][] };
        assert.equal(doc.mounts[0]![0], "LABEL=airgap-data");
        assert.match(doc.mounts[0]![3]!, /^ro,/);
        assert.deepEqual(doc.ssh_authorized_keys, ["ssh-ed25519 AAAA op@site"]);
        const net = parse(renderNetworkConfig({ address: "10.0.0.10/24", gateway: "10.0.0.1", dns: ["10.0.0.1"] }));
        assert.deepEqual(net.ethernets.primary.addresses, ["10.0.0.10/24"]);
        assert.deepEqual(net.ethernets.primary.routes, [{ to: "0.0.0.0/0", via: "10.0.0.1" }]);
    });
});
