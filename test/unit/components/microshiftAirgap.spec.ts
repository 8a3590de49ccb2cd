import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    MicroShiftAirgap,
    type MicroShiftAirgapArgs,
    microShiftRegistries,
} from "../../../sdk/components/microshiftAirgap";
import { inputsDigest } from "../../../sdk/lock";
import { cleanupAll, makeTempDir } from "../../harness/tmp";
import { installMocks, type Recorder, urnOf } from "./mocks";

/**
 * MicroShiftAirgap under Pulumi's mocks: the ImageMirror each mode declares (the release's
 * images and the extra ones, to the site registry, to an `oci-archive:` file, or from it), the
 * HostMirrorConfig of every host (the 999-microshift-mirror drop-in, by digest only, the CA),
 * and bad inputs refused before anything is declared.
 */

const D = (c: string) => `sha256:${c.repeat(64)}`;
const RELEASE = {
    release: { base: "4.18.1" },
    images: {
        "ovn-kubernetes-microshift": `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${D("a")}`,
        pod: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${D("b")}`,
        lvms_topolvm: `registry.redhat.io/lvms4/topolvm-rhel9@${D("c")}`,
        haproxy_router: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${D("d")}`,
    },
};
const EXTRA = ["registry.access.redhat.com/ubi9/ubi:9.4"];
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("MicroShiftAirgap component (mocks)", () => {
    let mocks: Recorder;
    let work: string;
    let releaseFile: string;
    let lockFile: string;
    let archive: string;

    /** A lock file pinning every image, so no registry is asked. */
    const pin = (images: string[], source?: string) =>
        fs.writeFileSync(
            lockFile,
            JSON.stringify({
                version: 1,
                inputs: inputsDigest({ images: [...images].sort(), source: source ?? "docker://" }),
                images: Object.fromEntries(images.map((ref, i) => [ref, D(String.fromCharCode(101 + i))])),
            }),
        );
    const all = [...Object.values(RELEASE.images).filter((v, i, a) => a.indexOf(v) === i), ...EXTRA];

    before(async () => {
        mocks = await installMocks();
    });

    beforeEach(async () => {
        work = await makeTempDir("msa-unit");
        releaseFile = path.join(work, "release-x86_64.json");
        fs.writeFileSync(releaseFile, JSON.stringify(RELEASE, null, 2));
        lockFile = path.join(work, "images.lock.json");
        archive = path.join(work, "transfer", "microshift.tar");
        fs.mkdirSync(path.dirname(archive));
    });

    after(cleanupAll);

    const declare = (name: string, args: Partial<MicroShiftAirgapArgs>) =>
        new MicroShiftAirgap(name, { releaseFile, extraImages: EXTRA, lockFile, ...args });

    it("direct: one ImageMirror of the release and extra images to the site registry, registries stripped", async () => {
        pin(all);
        const ms = declare("direct", { registry: "mirror.site:8443" });
        await mocks.settle([ms, ms.mirror]);
        assert.deepEqual(ms.imageList, all);
        const m = mocks.get("direct-images");
        assert.equal(m.type, "pulumi-nodejs:dynamic/airgap:ImageMirror");
        assert.equal(m.parent, await urnOf(ms));
        assert.deepEqual(Object.keys(m.inputs.images).sort(), [...all].sort());
        assert.equal(m.inputs.destination, "docker://mirror.site:8443");
        assert.equal(m.inputs.source, undefined);
        assert.equal(m.inputs.repositoryPath, "strip-registry");
        assert.equal(m.inputs.tls, undefined);
        assert.deepEqual(ms.hosts, []);
        assert.deepEqual(ms.registries, [
            { source: "quay.io", mirrors: ["mirror.site:8443"], mirrorByDigestOnly: true, insecure: false },
            { source: "registry.redhat.io", mirrors: ["mirror.site:8443"], mirrorByDigestOnly: true, insecure: false },
            {
                source: "registry.access.redhat.com",
                mirrors: ["mirror.site:8443"],
                mirrorByDigestOnly: true,
                insecure: false,
            },
        ]);
    });

    it("connected: the images go to the oci-archive: file, and no host is configured", async () => {
        pin(all);
        const ms = declare("conn", { mode: "connected", archive, auth: '{"auths":{}}' });
        await mocks.settle([ms.mirror]);
        const m = mocks.get("conn-images");
        assert.equal(m.inputs.destination, `oci-archive:${archive}`);
        assert.equal(m.inputs.source, undefined);
        assert.deepEqual(Object.keys(m.inputs.images).sort(), [...all].sort());
        assert.equal(m.inputs.auth.value, '{"auths":{}}', "the pull secret reaches the mirror as a secret");
        assert.deepEqual(ms.registries, []);
        assert.deepEqual(ms.hosts, []);
    });

    it("disconnected: from the archive to the registry; each host gets 999-microshift-mirror, by digest, and the CA; after the images", async () => {
        fs.writeFileSync(archive, "carried");
        pin(all, `oci-archive:${archive}`);
        const rootA = path.join(work, "hostA");
        const rootB = path.join(work, "hostB");
        const ms = declare("disc", {
            mode: "disconnected",
            archive,
            // Another registry than the other tests': the program's claims on destination tags hold across them.
            registry: "disconnected.site:8443",
            caCertificate: CA,
            hosts: [{ target: { local: { root: rootA } } }, { target: { local: { root: rootB } }, name: "edge-1" }],
        });
        await mocks.settle([ms.mirror, ...ms.hosts]);
        const m = mocks.get("disc-images");
        assert.equal(m.inputs.source, `oci-archive:${archive}`);
        assert.equal(m.inputs.destination, "docker://disconnected.site:8443");
        assert.equal(m.inputs.repositoryPath, "strip-registry");
        assert.deepEqual(m.inputs.tls, { caCert: CA });
        assert.deepEqual(
            ms.registries.map((r) => [r.source, r.mirrors]),
            [
                ["quay.io", ["disconnected.site:8443"]],
                ["registry.redhat.io", ["disconnected.site:8443"]],
                ["registry.access.redhat.com", ["disconnected.site:8443"]],
            ],
        );
        const mirrorUrn = await urnOf(ms.mirror);
        const parent = await urnOf(ms);
        for (const [name, root] of [
            ["disc-host0", rootA],
            ["edge-1", rootB],
        ] as const) {
            const h = mocks.get(name);
            assert.equal(h.type, "pulumi-nodejs:dynamic/airgap:HostMirrorConfig");
            assert.equal(h.parent, parent);
            assert.ok(h.dependencies.includes(mirrorUrn), `${name} does not wait for the images`);
            assert.deepEqual(h.inputs.target, { local: { root } });
            assert.equal(h.inputs.name, "999-microshift-mirror");
            assert.deepEqual(h.inputs.registries, ms.registries);
            for (const r of h.inputs.registries) assert.equal(r.mirrorByDigestOnly, true);
            assert.deepEqual(h.inputs.caCertificates, [{ name: "microshift-mirror-ca", pem: CA }]);
            // Under RHEL's trust anchors, etc/pki/ca-trust/source/anchors/microshift-mirror-ca.crt.
            assert.equal(h.inputs.caTrust, "rhel");
        }
    });

    it("an insecure registry, keep-registry paths and the registries the hosts send given explicitly", async () => {
        pin(all);
        const ms = declare("opts", {
            registry: "127.0.0.1:5000/mirror",
            insecure: true,
            repositoryPath: "keep-registry",
            mirroredRegistries: ["quay.io/openshift-release-dev"],
        });
        await mocks.settle([ms.mirror]);
        const m = mocks.get("opts-images");
        assert.deepEqual(m.inputs.tls, { insecureRegistries: ["127.0.0.1:5000/mirror"] });
        assert.equal(m.inputs.repositoryPath, "keep-registry");
        assert.deepEqual(ms.registries, [
            {
                source: "quay.io/openshift-release-dev",
                mirrors: ["127.0.0.1:5000/mirror/quay.io/openshift-release-dev"],
                mirrorByDigestOnly: true,
                insecure: true,
            },
        ]);
        assert.deepEqual(
            microShiftRegistries(["quay.io/a/b:1"], "m:5000", { mirroredRegistries: ["quay.io/a"] })[0]!.mirrors,
            ["m:5000/a"],
        );
    });

    describe("bad inputs: an error naming the file or argument, nothing declared", () => {
        const refused = async (name: string, args: Partial<MicroShiftAirgapArgs>, pattern: RegExp) => {
            const before = mocks.all.length;
            assert.throws(
                () => declare(name, args),
                (err: Error) => {
                    assert.match(err.message, new RegExp(`^MicroShiftAirgap "${name}": `));
                    assert.match(err.message, pattern);
                    return true;
                },
            );
            await new Promise((r) => setTimeout(r, 50));
            const children = mocks.all.slice(before).filter((r) => r.type !== "airgap:components:MicroShiftAirgap");
            assert.deepEqual(
                children.map((r) => r.name),
                [],
            );
        };

        it("a release-<arch>.json without .images", async () => {
            fs.writeFileSync(releaseFile, JSON.stringify({ release: { base: "4.18.1" } }));
            await refused("r1", { registry: "m:5000" }, new RegExp(`${releaseFile}: images: expected an object`));
        });

        it("a release file that is not JSON, and an image reference that does not parse", async () => {
            fs.writeFileSync(releaseFile, "{ images: ");
            await refused("r2", { registry: "m:5000" }, new RegExp(`${releaseFile}: not valid JSON`));
            fs.writeFileSync(releaseFile, JSON.stringify({ images: { pod: "Quay.io/UPPER:tag" } }));
            await refused("r3", { registry: "m:5000" }, new RegExp(`${releaseFile}: images\\.pod: `));
            fs.writeFileSync(releaseFile, JSON.stringify(RELEASE));
            await refused("r4", { registry: "m:5000", extraImages: ["ok/x:1", "bad ref"] }, /extraImages\[1\]: /);
        });

        it("disconnected (offline) mode without an archive, or with one that is not there", async () => {
            await refused(
                "o1",
                { mode: "disconnected", registry: "m:5000" },
                /archive: disconnected mode needs the OCI archive/,
            );
            await refused(
                "o2",
                { mode: "disconnected", registry: "m:5000", archive },
                new RegExp(`archive: ${archive} is not there: run the connected stack first`),
            );
            await refused("o3", { mode: "connected" }, /archive: connected mode needs the OCI archive/);
            await refused(
                "o4",
                { mode: "connected", archive: "rel/x.tar" },
                /archive: "rel\/x.tar" is not an absolute path/,
            );
        });

        it("no registry where one is needed, hosts on the connected side, an unknown mode", async () => {
            await refused("g1", {}, /registry: direct mode needs the site registry/);
            await refused(
                "g2",
                { mode: "connected", archive, hosts: [{ target: { local: { root: "/" } } }] },
                /hosts: the connected side configures no host/,
            );
            await refused(
                "g3",
                { mode: "offline" as never, archive },
                /mode: "offline" is not "direct", "connected" or "disconnected"/,
            );
        });

        it("a release file that is not there", async () => {
            await refused(
                "f1",
                { registry: "m:5000", releaseFile: path.join(work, "nope.json") },
                /reading .*nope\.json/,
            );
        });
    });
});
