import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    loadImageList,
    loadMicroShiftRelease,
    parseImageList,
    parseImageSetConfiguration,
    parseMicroShiftRelease,
} from "../../../provider/oci/loaders";

const digest = `sha256:${"a".repeat(64)}`;

describe("image list loaders", () => {
    describe("plain list", () => {
        it("reads one reference a line, skipping blanks and comments, without duplicates", () => {
            const text = `# site images\nquay.io/org/app:1.2\n\n  registry.example/ns/tool@${digest}  # pinned\nquay.io/org/app:1.2\nnginx\n`;
            assert.deepEqual(parseImageList(text, "images.txt"), [
                "quay.io/org/app:1.2",
                `registry.example/ns/tool@${digest}`,
                "nginx",
            ]);
        });

        it("names the file and line of a reference that does not parse", () => {
            assert.throws(
                () => parseImageList("quay.io/org/app:1.2\nquay.io/Org/App:1\n", "images.txt"),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" && /^images\.txt: line 2: .*must be lower-case/.test(err.message),
            );
            assert.throws(
                () => parseImageList("a b\n", "images.txt"),
                /images\.txt: line 1: expected one image reference/,
            );
            assert.throws(() => parseImageList("# nothing\n", "images.txt"), /images\.txt: .*no image reference/);
        });

        it("loads from a file, and names a file that cannot be read", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-loaders-"));
            try {
                const file = path.join(dir, "list.txt");
                fs.writeFileSync(file, "quay.io/org/app:1\n");
                assert.deepEqual(loadImageList(file), ["quay.io/org/app:1"]);
                assert.throws(() => loadImageList(path.join(dir, "missing.txt")), /reading .*missing\.txt/);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    });

    describe("MicroShift release-<arch>.json", () => {
        const release = {
            release: { base: "4.14.0" },
            images: {
                cli: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${digest}`,
                "haproxy-router": `quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:${"b".repeat(64)}`,
                pause: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${digest}`,
            },
        };

        it("takes the values of .images", () => {
            assert.deepEqual(parseMicroShiftRelease(JSON.stringify(release), "release-x86_64.json"), [
                `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${digest}`,
                `quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:${"b".repeat(64)}`,
            ]);
        });

        it("names the file and field of what is wrong", () => {
            assert.throws(
                () => parseMicroShiftRelease("{", "release-x86_64.json"),
                /release-x86_64\.json: not valid JSON/,
            );
            assert.throws(
                () => parseMicroShiftRelease(JSON.stringify({ release: {} }), "release-x86_64.json"),
                /release-x86_64\.json: images: expected an object/,
            );
            assert.throws(
                () => parseMicroShiftRelease(JSON.stringify({ images: { cli: 3 } }), "release-x86_64.json"),
                /release-x86_64\.json: images\.cli: expected an image reference, got 3/,
            );
            assert.throws(
                () => parseMicroShiftRelease(JSON.stringify({ images: { cli: "quay.io/x@sha256:zz" } }), "r.json"),
                /r\.json: images\.cli: invalid image reference/,
            );
        });

        it("loads from a file", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-loaders-"));
            try {
                const file = path.join(dir, "release-aarch64.json");
                fs.writeFileSync(file, JSON.stringify(release));
                assert.equal(loadMicroShiftRelease(file).length, 2);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    });

    describe("oc-mirror ImageSetConfiguration", () => {
        const config = (mirror: string) =>
            `kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nstorageConfig:\n  local:\n    path: ./metadata\nmirror:\n${mirror}`;

        it("takes mirror.additionalImages[].name, accepting empty other sections", () => {
            const text = config(
                `  platform: {}\n  operators: []\n  helm: {}\n  additionalImages:\n    - name: registry.redhat.io/ubi8/ubi:latest\n    - name: quay.io/org/app@${digest}\n`,
            );
            assert.deepEqual(parseImageSetConfiguration(text, "isc.yaml"), [
                "registry.redhat.io/ubi8/ubi:latest",
                `quay.io/org/app@${digest}`,
            ]);
        });

        it("refuses sections it does not support yet, naming them", () => {
            const operators = config(
                "  operators:\n    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.14\n  additionalImages:\n    - name: quay.io/org/app:1\n",
            );
            assert.throws(
                () => parseImageSetConfiguration(operators, "isc.yaml"),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_INVALID_ARGUMENT" &&
                    /isc\.yaml: not supported yet: mirror\.operators/.test(err.message),
            );
            const platform = config(
                "  platform:\n    channels:\n      - name: stable-4.14\n  additionalImages:\n    - name: quay.io/org/app:1\n",
            );
            assert.throws(
                () => parseImageSetConfiguration(platform, "isc.yaml"),
                /not supported yet: mirror\.platform/,
            );
            const helm = config(
                "  helm:\n    repositories:\n      - name: x\n        url: https://charts.example\n  additionalImages:\n    - name: quay.io/org/app:1\n",
            );
            assert.throws(() => parseImageSetConfiguration(helm, "isc.yaml"), /not supported yet: mirror\.helm/);
        });

        it("names the file and field of what is wrong", () => {
            assert.throws(
                () => parseImageSetConfiguration("kind: Other\n", "isc.yaml"),
                /isc\.yaml: kind: expected "ImageSetConfiguration"/,
            );
            assert.throws(
                () => parseImageSetConfiguration(config("  additionalImages: []\n"), "isc.yaml"),
                /isc\.yaml: mirror\.additionalImages: expected a non-empty list/,
            );
            assert.throws(
                () =>
                    parseImageSetConfiguration(
                        config("  additionalImages:\n    - name: quay.io/org/app:1\n    - nam: x\n"),
                        "isc.yaml",
                    ),
                /isc\.yaml: mirror\.additionalImages\[1\]\.name: expected an image reference/,
            );
            assert.throws(
                () =>
                    parseImageSetConfiguration(
                        config("  additionalImages:\n    - name: 'quay.io/org/app::1'\n"),
                        "isc.yaml",
                    ),
                /isc\.yaml: mirror\.additionalImages\[0\]\.name: invalid image reference/,
            );
            assert.throws(() => parseImageSetConfiguration("a: [", "isc.yaml"), /isc\.yaml: not valid YAML/);
        });
    });
});
