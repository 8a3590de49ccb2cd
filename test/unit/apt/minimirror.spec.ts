import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hasCode } from "../../../provider/errors";
import { loadMiniMirrorSources, parseMiniMirrorYaml, parseSourceTxt } from "../../../provider/apt/minimirror";

describe("mini-mirror sources", () => {
    let dir: string;
    const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
    };
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-minimirror-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("reads a sources/<prefix>/<name>/{source.txt,packages.txt} tree", () => {
        write("debian/buster/source.txt", "http://deb.example/debian http://deb.example/key.asc buster main contrib\n");
        write("debian/buster/packages.txt", "package1\n\n# a comment\npackage3 (>=3.6)\r\n");
        write("ubuntu/bionic/source.txt", "# upstream\nhttp://u.example/ubuntu http://u.example/key.gpg bionic main\n");
        write("ubuntu/bionic/packages.txt", "ceph-common\n");
        assert.deepEqual(loadMiniMirrorSources(dir), [
            {
                prefix: "debian",
                name: "buster",
                url: "http://deb.example/debian",
                keyUrl: "http://deb.example/key.asc",
                distribution: "buster",
                components: ["main", "contrib"],
                packages: ["package1", "package3 (>=3.6)"],
            },
            {
                prefix: "ubuntu",
                name: "bionic",
                url: "http://u.example/ubuntu",
                keyUrl: "http://u.example/key.gpg",
                distribution: "bionic",
                components: ["main"],
                packages: ["ceph-common"],
            },
        ]);
    });

    it("names the file and line of a malformed source.txt", () => {
        assert.throws(
            () => parseSourceTxt("http://a/debian http://a/key buster\n", "/s/source.txt"),
            (err: Error) => hasCode(err, "ERR_PARSE") && /\/s\/source\.txt:1: expected "source_url/.test(err.message),
        );
        assert.throws(
            () => parseSourceTxt("deb.example/debian http://a/key buster main\n"),
            /source_url "deb\.example\/debian" is not a URL/,
        );
    });

    it("says which file is missing", () => {
        write("debian/buster/source.txt", "http://a/debian http://a/key buster main\n");
        assert.throws(() => loadMiniMirrorSources(dir), /packages\.txt is missing/);
    });

    it("rejects an empty tree and an empty packages.txt", () => {
        assert.throws(() => loadMiniMirrorSources(dir), /holds no <prefix>\/<name>\/source\.txt/);
        write("debian/buster/source.txt", "http://a/debian http://a/key buster main\n");
        write("debian/buster/packages.txt", "# nothing\n");
        assert.throws(() => loadMiniMirrorSources(dir), /lists no packages/);
    });

    it("reads the YAML form, versions pinned with =", () => {
        const yaml = `
name: ubuntu
url: http://archive.example/ubuntu
key_url: http://archive.example/key.asc
components: [main, universe]
subrepos:
  - distribution: bionic
    packages:
      - name: ceph-common
        version: 12.2.13-0ubuntu0.18.04.4
      - name: jq
  - distribution: bionic-updates
    packages: [curl]
`;
        assert.deepEqual(parseMiniMirrorYaml(yaml), [
            {
                prefix: "ubuntu",
                name: "ubuntu-bionic",
                url: "http://archive.example/ubuntu",
                keyUrl: "http://archive.example/key.asc",
                distribution: "bionic",
                components: ["main", "universe"],
                packages: ["ceph-common (= 12.2.13-0ubuntu0.18.04.4)", "jq"],
            },
            {
                prefix: "ubuntu",
                name: "ubuntu-bionic-updates",
                url: "http://archive.example/ubuntu",
                keyUrl: "http://archive.example/key.asc",
                distribution: "bionic-updates",
                components: ["main", "universe"],
                packages: ["curl"],
            },
        ]);
    });

    it("names the field that is wrong in the YAML form", () => {
        assert.throws(() => parseMiniMirrorYaml("name: x\nsubrepos: []\n"), /"url" must be a non-empty string/);
        assert.throws(() => parseMiniMirrorYaml("name: x\nurl: http://a\nsubrepos: []\n"), /"subrepos" must list/);
        assert.throws(
            () =>
                parseMiniMirrorYaml(
                    "name: x\nurl: http://a\nsubrepos:\n  - distribution: d\n    packages:\n      - version: 1\n",
                ),
            /subrepos\[0\]\.packages\[0\]\.name/,
        );
        assert.throws(() => parseMiniMirrorYaml("name: [unclosed\n"), /not YAML/);
    });
});
