import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { systemAptSources, systemDebianArchive } from "../../../provider/apt/system";

describe("the machine's APT sources", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-sources-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("reads deb822 .sources and one-line .list files, skipping deb-src and disabled stanzas", () => {
        fs.writeFileSync(
            path.join(dir, "a.sources"),
            [
                "Types: deb deb-src",
                "URIs: http://archive.example/debian",
                "Suites: bookworm bookworm-updates",
                "Components: main contrib",
                "Signed-By: /usr/share/keyrings/archive.gpg",
                "",
                "Types: deb",
                "URIs: http://archive.example/debian-security",
                "Suites: bookworm-security",
                "Components: main",
                "",
                "Types: deb",
                "Enabled: no",
                "URIs: http://off.example/debian",
                "Suites: bookworm",
                "Components: main",
                "",
            ].join("\n"),
        );
        fs.writeFileSync(
            path.join(dir, "b.list"),
            "# comment\ndeb-src http://x.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://x.example/debian trixie main non-free\n",
        );
        fs.writeFileSync(path.join(dir, "c.disabled"), "deb http://ignored.example/debian bookworm main\n");
        assert.deepEqual(
            systemAptSources(dir).map(({ uri, suites, components, signedBy }) => ({
                uri,
                suites,
                components,
                signedBy,
            })),
            [
                {
                    uri: "http://archive.example/debian",
                    suites: ["bookworm", "bookworm-updates"],
                    components: ["main", "contrib"],
                    signedBy: "/usr/share/keyrings/archive.gpg",
                },
                {
                    uri: "http://archive.example/debian-security",
                    suites: ["bookworm-security"],
                    components: ["main"],
                    signedBy: undefined,
                },
                {
                    uri: "http://x.example/debian",
                    suites: ["trixie"],
                    components: ["main", "non-free"],
                    signedBy: "/k.gpg",
                },
            ],
        );
    });

    it("picks the main archive, not -security or -updates", () => {
        fs.writeFileSync(
            path.join(dir, "a.sources"),
            "Types: deb\nURIs: http://s.example/debian-security/\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://a.example/debian/\nSuites: bookworm-updates bookworm\nComponents: main\nSigned-By: /k.gpg\n",
        );
        assert.deepEqual(systemDebianArchive(dir), {
            url: "http://a.example/debian",
            distribution: "bookworm",
            keyring: "/k.gpg",
        });
        assert.equal(systemDebianArchive(path.join(dir, "missing")), undefined);
    });
});
