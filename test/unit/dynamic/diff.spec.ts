import * as path from "node:path";
import * as os from "node:os";
import * as fs from "node:fs";
import assert from "node:assert/strict";
import { lockDigest, lockText } from "../../../provider/apt/lock_text";
import { operations as apt } from "../../../provider/apt/operations";
import { unknownValue } from "../../../provider/dynamic/contract";
import { renderHostFiles } from "../../../provider/host/render";
import { operations as host } from "../../../provider/host/operations";
import { operations as images } from "../../../provider/oci/operations";
import { sha256 } from "../../../provider/store/atomic";

/**
 * Each resource's `diff`: which input changes replace the resource, which update it in place,
 * and which are no change at all. (Dynamic providers report no per-property diff; the CLI
 * computes that from the inputs, so only `changes` and `replaces` are the provider's.)
 */

type AnyState = never;

describe("AptMirror diff", () => {
    const spec = {
        source: {
            url: "http://deb.example/debian",
            distribution: "bookworm",
            components: ["main"],
            architectures: ["amd64"],
        },
        packages: { "app/amd64": "1.0-1" },
        publish: { root: "/srv/mirror", prefix: "debian", origin: "site" },
        allowUnsigned: true,
    };
    const diff = (olds: object, news: object) => apt.diff("id", olds as AnyState, news as AnyState);

    it("the same inputs, in any key order, are no change", async () => {
        const reordered = {
            allowUnsigned: true,
            publish: { origin: "site", prefix: "debian", root: "/srv/mirror" },
            packages: spec.packages,
            source: spec.source,
        };
        assert.deepEqual(await diff({ ...spec, drift: [] }, reordered), { changes: false, replaces: [] });
    });

    it("another spelling of the publish root is no change; another root or prefix replaces", async () => {
        for (const root of ["/srv/mirror/", "/srv/./mirror", "/srv//mirror/"]) {
            assert.deepEqual(
                await diff({ ...spec, drift: [] }, { ...spec, publish: { ...spec.publish, root } }),
                { changes: false, replaces: [] },
                root,
            );
        }
        for (const publish of [
            { ...spec.publish, root: "/srv/other" },
            { ...spec.publish, prefix: "ubuntu" },
        ]) {
            assert.deepEqual((await diff(spec, { ...spec, publish })).replaces, ["publish"], JSON.stringify(publish));
        }
        // A state directory moved elsewhere is an update: the mirror stays where it is served.
        assert.deepEqual(await diff(spec, { ...spec, publish: { ...spec.publish, stateDir: "/var/cache/m" } }), {
            changes: true,
            replaces: [],
        });
    });

    it("a package version, a query result or the origin is an update in place", async () => {
        for (const news of [
            { ...spec, packages: { "app/amd64": "1.1-1" } },
            { ...spec, publish: { ...spec.publish, origin: "other" } },
            { ...spec, concurrency: 2 },
        ]) {
            assert.deepEqual(await diff(spec, news), { changes: true, replaces: [] }, JSON.stringify(news));
        }
    });

    it("another publish root or prefix replaces it", async () => {
        assert.deepEqual(await diff(spec, { ...spec, publish: { ...spec.publish, root: "/srv/other" } }), {
            changes: true,
            replaces: ["publish"],
        });
        assert.deepEqual(await diff(spec, { ...spec, publish: { ...spec.publish, prefix: "debian2" } }), {
            changes: true,
            replaces: ["publish"],
        });
    });

    it("the lock as text (what the SDK passes) against a state holding its digest, or an older state's map", async () => {
        const text = lockText(spec.packages);
        assert.equal(text, "app/amd64 1.0-1\n");
        const { packages: _, ...rest } = spec;
        const current = { ...rest, packagesSha256: lockDigest(text), drift: [] };
        assert.deepEqual(await diff(current, { ...spec, packages: text }), { changes: false, replaces: [] });
        // A state written by an older version holds the map: the same lock is no change.
        assert.deepEqual(await diff({ ...spec, drift: [] }, { ...spec, packages: text }), {
            changes: false,
            replaces: [],
        });
        for (const packages of ["app/amd64 1.1-1\n", "app/amd64 1.0-1\nlibfoo/amd64 1.2-1\n", ""]) {
            assert.deepEqual(await diff(current, { ...spec, packages }), { changes: true, replaces: [] }, packages);
        }
        // `external` (what dependencies.from supplies) is compared the same way.
        const external = lockText({ "libc6/amd64": "2.36-9 from http://deb.example/debian bookworm" });
        const withExternal = { ...current, externalSha256: lockDigest(external) };
        assert.equal((await diff(withExternal, { ...spec, packages: text, external })).changes, false);
        assert.equal((await diff(withExternal, { ...spec, packages: text })).changes, true);
        assert.equal((await diff(current, { ...spec, packages: text, external })).changes, true);
    });

    it("drift found by the last refresh is a change, so up repairs it; unknown inputs are a change", async () => {
        assert.deepEqual(await diff({ ...spec, drift: ["pool/x.deb: missing"] }, spec), {
            changes: true,
            replaces: [],
        });
        assert.equal((await diff(spec, { ...spec, packages: unknownValue })).changes, true);
    });
});

describe("ImageMirror diff", () => {
    const spec = {
        images: { "quay.io/org/app:1.2": `sha256:${"a".repeat(64)}` },
        destination: "docker://mirror.local:5000",
        repositoryPath: "keep-registry",
    };
    const diff = (olds: object, news: object) => images.diff("id", olds as AnyState, news as AnyState);

    it("the same inputs are no change; repositoryPath left out is its default", async () => {
        assert.deepEqual(await diff({ ...spec, drift: [] }, spec), { changes: false, replaces: [] });
        const { repositoryPath: _, ...withoutPath } = spec;
        assert.deepEqual((await diff(spec, withoutPath)).replaces, []);
    });

    it("a moved digest, another platform set or concurrency is an update in place", async () => {
        for (const news of [
            { ...spec, images: { "quay.io/org/app:1.2": `sha256:${"b".repeat(64)}` } },
            { ...spec, platforms: ["linux/amd64"] },
            { ...spec, concurrency: 8 },
        ]) {
            assert.deepEqual(await diff(spec, news), { changes: true, replaces: [] }, JSON.stringify(news));
        }
    });

    it("another destination or repositoryPath replaces it", async () => {
        assert.deepEqual(await diff(spec, { ...spec, destination: "docker://other.local:5000" }), {
            changes: true,
            replaces: ["destination"],
        });
        assert.deepEqual(await diff(spec, { ...spec, repositoryPath: "strip-registry" }), {
            changes: true,
            replaces: ["repositoryPath"],
        });
    });

    it("drift is a change", async () => {
        assert.equal((await diff({ ...spec, drift: ["missing"] }, spec)).changes, true);
    });

    it("another spelling of the same registry or layout is no change, also against states not normalised", async () => {
        const noChange = { changes: false, replaces: [] };
        for (const [olds, news] of [
            ["docker://mirror.local:5000", "docker://mirror.local:5000/"],
            ["docker://Mirror.Local:5000/", "docker://mirror.local:5000"],
            ["docker://mirror.local:5000/site", "docker://mirror.local:5000//site/"],
            ["docker://mirror.local:443/site", "docker://MIRROR.local/site"],
            ["oci:/srv/images/layout", "oci:/srv/images/./layout/"],
            ["oci-archive:/srv/a/../images.tar", "oci-archive://srv//images.tar"],
        ] as const) {
            assert.deepEqual(
                await diff({ ...spec, destination: olds, drift: [] }, { ...spec, destination: news }),
                noChange,
                `${olds} → ${news}`,
            );
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-diff-"));
        try {
            fs.mkdirSync(path.join(dir, "real"));
            fs.symlinkSync(path.join(dir, "real"), path.join(dir, "link"));
            const viaLink = { ...spec, destination: `oci:${dir}/link` };
            assert.deepEqual(await diff({ ...spec, destination: `oci:${dir}/real` }, viaLink), noChange);
            assert.deepEqual(await diff({ ...spec, destination: `oci:${dir}/other` }, viaLink), {
                changes: true,
                replaces: ["destination"],
            });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
        for (const news of ["docker://mirror.local:5001", "docker://mirror.local:5000/site", "oci:/srv/layout"]) {
            assert.deepEqual(await diff(spec, { ...spec, destination: news }), {
                changes: true,
                replaces: ["destination"],
            });
        }
    });

    it("check hands on the destination spelled one way; an unknown destination replaces", async () => {
        const checked = await images.check({}, { ...spec, destination: "docker://Mirror.Local:5000//site/" } as never);
        assert.deepEqual(checked.failures, []);
        assert.equal(checked.inputs.destination, "docker://mirror.local:5000/site");
        const relative = await images.check({}, { ...spec, destination: "oci:./layout/." } as never);
        assert.equal(relative.inputs.destination, `oci:${path.resolve("layout")}`);
        assert.deepEqual(await diff(spec, { ...spec, destination: unknownValue }), {
            changes: true,
            replaces: ["destination"],
        });
    });
});

describe("HostMirrorConfig diff", () => {
    const spec = {
        name: "site",
        target: { local: { root: "/srv/host" } },
        registries: [{ source: "quay.io", mirrors: ["mirror.local:5000"] }],
    };
    const state = (s: typeof spec) => ({
        ...s,
        files: Object.fromEntries(renderHostFiles(s as never).map((f) => [f.path, sha256(f.content)])),
    });
    const diff = (olds: object, news: object) => host.diff("id", olds as AnyState, news as AnyState);

    it("the same inputs whose files are as rendered are no change", async () => {
        assert.deepEqual(await diff(state(spec), spec), { changes: false, replaces: [] });
    });

    it("another mirror is an update in place; a file that differs from its rendering is a change", async () => {
        const news = { ...spec, registries: [{ source: "quay.io", mirrors: ["mirror2.local:5000"] }] };
        assert.deepEqual(await diff(state(spec), news), { changes: true, replaces: [] });
        const edited = { ...state(spec), files: { "etc/containers/registries.conf.d/site.conf": "0".repeat(64) } };
        assert.deepEqual(await diff(edited, spec), { changes: true, replaces: [] });
    });

    it("another target replaces it; unknown inputs are a change", async () => {
        assert.deepEqual(await diff(state(spec), { ...spec, target: { local: { root: "/srv/other" } } }), {
            changes: true,
            replaces: ["target"],
        });
        assert.equal((await diff(state(spec), { ...spec, registries: unknownValue })).changes, true);
    });

    it("two spellings of one place are the same target: no replacement (its delete would undo the create)", async () => {
        for (const root of ["/srv/host/", "/srv/host/.", "/srv//host", "/srv/x/../host"]) {
            assert.deepEqual(
                await diff(state(spec), { ...spec, target: { local: { root } } }),
                { changes: false, replaces: [] },
                root,
            );
        }
        // A state written before the default was spelled out, and the default spelled out.
        const defaulted = { ...spec, target: { local: {} } };
        assert.deepEqual(await diff(state(defaulted as typeof spec), { ...spec, target: { local: { root: "/" } } }), {
            changes: false,
            replaces: [],
        });
    });

    it("check hands on the target spelled one way: absolute, no trailing slash, links resolved", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-place-"));
        try {
            fs.mkdirSync(path.join(dir, "real"));
            fs.symlinkSync(path.join(dir, "real"), path.join(dir, "link"));
            const real = fs.realpathSync(path.join(dir, "real"));
            for (const root of [`${dir}/real/`, `${dir}/real/.`, `${dir}/link`, `${dir}/link/`]) {
                const checked = await host.check({}, { ...spec, target: { local: { root } } } as AnyState);
                assert.deepEqual(checked.failures, [], root);
                assert.deepEqual(checked.inputs.target, { local: { root: real } }, root);
            }
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
