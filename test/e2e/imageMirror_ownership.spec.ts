import assert from "node:assert/strict";
import { digestOf } from "../../provider/oci/digest";
import type { ImageMirrorArgs } from "../../sdk";
import { createProgramStack, type ProgramStack } from "../harness/program";
import { type RegistryServer, startRegistry } from "../harness/servers/registry";
import { cleanupAll } from "../harness/tmp";
import { singleLayout, skopeo, skopeoRaw } from "../integration/oci/registry_helpers";

/** One ImageMirror per entry of the config object `mirrors` (name → arguments). */
const mirrorsProgram = `import * as pulumi from "@pulumi/pulumi";
import { ImageMirror, type ImageMirrorArgs } from "pulumi-airgap";

const mirrors = new pulumi.Config().requireObject<Record<string, ImageMirrorArgs>>("mirrors");
for (const [name, args] of Object.entries(mirrors)) {
    new ImageMirror(name, args);
}
`;

describe("Two ImageMirrors sharing an image in one registry, with the real Pulumi CLI, judged by skopeo", function () {
    this.timeout(600_000);

    let source: RegistryServer;
    let mirror: RegistryServer;
    let t: ProgramStack;
    let app: string;
    let digest: string;
    let mirrors: Record<string, ImageMirrorArgs>;

    const digestAt = async (ref: string) => digestOf(await skopeoRaw(ref));

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        app = `${source.host}/src/app:v1`;
        await skopeo(["copy", "--dest-tls-verify=false", await singleLayout("v1", 3000, 61), `docker://${app}`]);
        digest = await digestAt(`docker://${app}`);
        const common = {
            destination: `docker://${mirror.host}`,
            repositoryPath: "strip-registry" as const,
            tls: { insecureRegistries: [source.host, mirror.host] },
        };
        // One image: by its tag in "tagged", pinned by digest (tag sha256-<hex>) in "pinned".
        mirrors = {
            tagged: { ...common, images: [app] },
            pinned: { ...common, images: [`${source.host}/src/app@${digest}`] },
        };
        t = await createProgramStack("imageowners", {
            source: mirrorsProgram,
            config: () => ({ mirrors: JSON.stringify(mirrors) }),
        });
    });

    after(async () => {
        await t?.dispose();
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("up creates both; removing one from the program deletes it and leaves the other's image", async () => {
        const first = await t.up();
        assert.equal(first.changes.create, 3, t.lastOutput());
        const tagged = `docker://${mirror.host}/src/app:v1`;
        const pinned = `docker://${mirror.host}/src/app:sha256-${digest.slice("sha256:".length)}`;
        assert.equal(await digestAt(tagged), digest);
        assert.equal(await digestAt(pinned), digest);

        delete (mirrors as Record<string, unknown>)["pinned"];
        const second = await t.up();
        assert.equal(second.changes.delete, 1, t.lastOutput());
        assert.equal(await digestAt(tagged), digest);
        // The whole image, not only its manifest: skopeo copies it out of the mirror.
        const out = await skopeo(["copy", "--src-tls-verify=false", tagged, `oci:${t.dir}/pulled:x`], false);
        assert.equal(out.code, 0, out.stderr);
        await t.preview({ expectNoChanges: true });
    });

    it("the destination respelled with a trailing slash is no change: preview --expect-no-changes passes", async () => {
        mirrors["tagged"] = { ...mirrors["tagged"]!, destination: `docker://${mirror.host}/` };
        await t.preview({ expectNoChanges: true });
        mirrors["tagged"] = { ...mirrors["tagged"]!, destination: `docker://${mirror.host}//` };
        await t.preview({ expectNoChanges: true });
    });

    it("two mirrors pushing the same tag to one destination are refused at preview, naming both", async () => {
        const saved = mirrors;
        // The destination spelled another way is still the same place.
        mirrors = { ...saved, again: { ...saved["tagged"]!, destination: `docker://${mirror.host}/` } };
        try {
            const r = await t.cli(["preview", "--non-interactive"], { timeoutMs: 180_000 });
            const out = r.stdout + r.stderr;
            assert.notEqual(r.code, 0, out);
            assert.match(
                out,
                new RegExp(
                    `ImageMirror "again": images: docker://${mirror.host.replace(/\./g, "\\.")}/src/app:v1 is also written by ImageMirror "tagged"`,
                ),
            );
            assert.doesNotMatch(out, /unhandled exception|error serializing property/);
        } finally {
            mirrors = saved;
        }
        await t.preview({ expectNoChanges: true });
    });
});
