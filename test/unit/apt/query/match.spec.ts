import assert from "node:assert/strict";
import { DependencyNode, FieldNode } from "../../../../provider/apt/query/ast";
import { compileQuery } from "../../../../provider/apt/query/match";
import { hasCode } from "../../../../provider/errors";
import { records } from "./records";

const index = records(`
    Package: nginx
    Version: 1.22.1-9
    Architecture: amd64
    Priority: optional
    Section: httpd
    Installed-Size: 1200
    Provides: httpd, httpd-cgi
    Depends: libc6 (>= 2.34),
     libssl3 (>= 3.0.0)

    Package: nginx
    Version: 1.22.1-9
    Architecture: arm64
    Priority: optional
    Section: httpd
    Installed-Size: 999

    Package: nginx
    Version: 1:1.24.0-1~bpo12+1
    Architecture: amd64
    Priority: optional
    Section: httpd

    Package: nginx-doc
    Version: 1.22.1-9
    Architecture: all
    Source: nginx
    Priority: optional
    Section: doc
    Installed-Size: 20

    Package: nginx-light
    Version: 1.18.0-6+b1
    Architecture: amd64
    Source: nginx (1.18.0-6)
    Priority: optional
    Section: httpd

    Package: apache2
    Version: 2.4.57-2
    Architecture: amd64
    Priority: optional
    Section: httpd
    Provides: httpd (= 2.4), httpd-cgi
    Maintainer: Debian Apache Maintainers <debian-apache@lists.debian.org>

    Package: libc6
    Version: 2.36-9+deb12u4
    Architecture: amd64
    Priority: required
    Section: libs
    Multi-Arch: same

    Package: base-files
    Version: 12.4+deb12u5
    Architecture: amd64
    Priority: required
    Essential: yes
    Section: admin

    Package: libc6-udeb
    Version: 2.36-9+deb12u4
    Architecture: amd64
    Priority: optional
    Section: debian-installer
    Filename: pool/main/g/glibc/libc6-udeb_2.36-9+deb12u4_amd64.udeb
    Source: glibc
`);

function select(query: string): string[] {
    const compiled = compileQuery(query);
    return index
        .filter((pkg) => compiled.matches(pkg))
        .map((pkg) => `${pkg.name}_${pkg.version}_${pkg.architecture}`)
        .sort();
}

describe("apt query matching", () => {
    it("matches a plain name, and packages providing it", () => {
        assert.deepEqual(select("nginx-doc"), ["nginx-doc_1.22.1-9_all"]);
        assert.deepEqual(select("nginx"), [
            "nginx_1.22.1-9_amd64",
            "nginx_1.22.1-9_arm64",
            "nginx_1:1.24.0-1~bpo12+1_amd64",
        ]);
        assert.deepEqual(select("httpd"), ["apache2_2.4.57-2_amd64", "nginx_1.22.1-9_amd64"]);
    });

    it("compares versions in dpkg order, and only against real names", () => {
        assert.deepEqual(select("nginx (>= 1.22)"), [
            "nginx_1.22.1-9_amd64",
            "nginx_1.22.1-9_arm64",
            "nginx_1:1.24.0-1~bpo12+1_amd64",
        ]);
        // The epoch makes 1:1.24 newer than 2.0.
        assert.deepEqual(select("nginx (>> 2.0)"), ["nginx_1:1.24.0-1~bpo12+1_amd64"]);
        assert.deepEqual(select("nginx (<< 1:1.24)"), ["nginx_1.22.1-9_amd64", "nginx_1.22.1-9_arm64"]);
        assert.deepEqual(select("nginx (= 1.22.1-9)"), ["nginx_1.22.1-9_amd64", "nginx_1.22.1-9_arm64"]);
        // A versioned query does not look at Provides, even a versioned one.
        assert.deepEqual(select("httpd (>= 1)"), []);
    });

    it("restricts architecture with {arch}, where all packages belong to every architecture", () => {
        assert.deepEqual(select("nginx {arm64}"), ["nginx_1.22.1-9_arm64"]);
        assert.deepEqual(select("nginx-doc {arm64}"), ["nginx-doc_1.22.1-9_all"]);
        assert.deepEqual(select("nginx-doc {source}"), []);
        assert.deepEqual(select("nginx (>= 1.22) {amd64}"), ["nginx_1.22.1-9_amd64", "nginx_1:1.24.0-1~bpo12+1_amd64"]);
    });

    it("matches a package key exactly", () => {
        assert.deepEqual(select("nginx_1.22.1-9_amd64"), ["nginx_1.22.1-9_amd64"]);
        assert.deepEqual(select("nginx_1.22.1-9_all"), []);
    });

    it("reads stanza fields with string equality", () => {
        assert.deepEqual(select("Priority (required)"), [
            "base-files_12.4+deb12u5_amd64",
            "libc6_2.36-9+deb12u4_amd64",
        ]);
        assert.deepEqual(select("Priority (= Required)"), []);
        assert.deepEqual(select("Essential"), ["base-files_12.4+deb12u5_amd64"]);
        assert.deepEqual(select("Maintainer (~ debian-apache@)"), ["apache2_2.4.57-2_amd64"]);
        // A folded relation field reads as one line.
        assert.deepEqual(select('Depends ("libc6 (>= 2.34), libssl3 (>= 3.0.0)")'), ["nginx_1.22.1-9_amd64"]);
    });

    it("compares integers as numbers and other strings as strings, never matching a missing field", () => {
        assert.deepEqual(select("Installed-Size (<< 1000)"), ["nginx-doc_1.22.1-9_all", "nginx_1.22.1-9_arm64"]);
        assert.deepEqual(select("Section (>> e)"), [
            "apache2_2.4.57-2_amd64",
            "libc6_2.36-9+deb12u4_amd64",
            "nginx-light_1.18.0-6+b1_amd64",
            "nginx_1.22.1-9_amd64",
            "nginx_1.22.1-9_arm64",
            "nginx_1:1.24.0-1~bpo12+1_amd64",
        ]);
    });

    it("knows the special fields", () => {
        assert.deepEqual(select("$Source (nginx)"), [
            "nginx-doc_1.22.1-9_all",
            "nginx-light_1.18.0-6+b1_amd64",
            "nginx_1.22.1-9_amd64",
            "nginx_1.22.1-9_arm64",
            "nginx_1:1.24.0-1~bpo12+1_amd64",
        ]);
        assert.deepEqual(select("$SourceVersion (1.18.0-6)"), ["nginx-light_1.18.0-6+b1_amd64"]);
        // 2.36 is newer than 2.4: digits compare as numbers.
        assert.deepEqual(select("$Version (>= 2.4)"), [
            "apache2_2.4.57-2_amd64",
            "base-files_12.4+deb12u5_amd64",
            "libc6-udeb_2.36-9+deb12u4_amd64",
            "libc6_2.36-9+deb12u4_amd64",
            "nginx_1:1.24.0-1~bpo12+1_amd64",
        ]);
        assert.deepEqual(select("$Version (<< 1.22.1-9~)"), ["nginx-light_1.18.0-6+b1_amd64"]);
        assert.deepEqual(select("$Version (% 2.36-*)"), [
            "libc6-udeb_2.36-9+deb12u4_amd64",
            "libc6_2.36-9+deb12u4_amd64",
        ]);
        assert.deepEqual(select("$Version (~ ~bpo)"), ["nginx_1:1.24.0-1~bpo12+1_amd64"]);
        assert.deepEqual(select("$PackageType (udeb)"), ["libc6-udeb_2.36-9+deb12u4_amd64"]);
        assert.equal(select("$PackageType (deb)").length, index.length - 1);
    });

    it("matches $Architecture (arch) on all packages too, as aptly does, but not other operators", () => {
        assert.deepEqual(select("$Architecture (arm64)"), ["nginx-doc_1.22.1-9_all", "nginx_1.22.1-9_arm64"]);
        assert.deepEqual(select("$Architecture (% arm*)"), ["nginx_1.22.1-9_arm64"]);
        assert.deepEqual(select("Architecture (arm64)"), ["nginx_1.22.1-9_arm64"]);
    });

    it("matches Name with globs and regular expressions", () => {
        assert.deepEqual(select("Name (% ngin?-*)"), ["nginx-doc_1.22.1-9_all", "nginx-light_1.18.0-6+b1_amd64"]);
        assert.deepEqual(select("Name (% [ab]*)"), ["apache2_2.4.57-2_amd64", "base-files_12.4+deb12u5_amd64"]);
        assert.deepEqual(select("Name (% [^ab]*6)"), ["libc6_2.36-9+deb12u4_amd64"]);
        // "!" ends an unquoted word, so a negated set is quoted.
        assert.deepEqual(select('Name (% "[!ab]*6")'), ["libc6_2.36-9+deb12u4_amd64"]);
        assert.deepEqual(select("Name (% nginx\\-doc)"), ["nginx-doc_1.22.1-9_all"]);
        assert.deepEqual(select("Name (~ ^lib.*6$)"), ["libc6_2.36-9+deb12u4_amd64"]);
        assert.deepEqual(select("Name (~ c6)"), ["libc6-udeb_2.36-9+deb12u4_amd64", "libc6_2.36-9+deb12u4_amd64"]);
    });

    it("combines with |, , and !", () => {
        assert.deepEqual(select("Priority (required), !Essential"), ["libc6_2.36-9+deb12u4_amd64"]);
        assert.deepEqual(select("nginx-doc | apache2"), ["apache2_2.4.57-2_amd64", "nginx-doc_1.22.1-9_all"]);
        assert.deepEqual(select("$Source (nginx), !(nginx | nginx-doc)"), ["nginx-light_1.18.0-6+b1_amd64"]);
        assert.deepEqual(select("Section (httpd), $Architecture (amd64), !nginx (>= 1.20)"), [
            "apache2_2.4.57-2_amd64",
            "nginx-light_1.18.0-6+b1_amd64",
        ]);
    });

    it("tells whether a query restricts versions", () => {
        assert.equal(compileQuery("nginx").constrainsVersion, false);
        assert.equal(compileQuery("Priority (required) | nginx {amd64}").constrainsVersion, false);
        assert.equal(compileQuery("nginx (>= 1)").constrainsVersion, true);
        assert.equal(compileQuery("nginx_1_amd64").constrainsVersion, true);
        assert.equal(compileQuery("Name (nginx), $Version (% 1.*)").constrainsVersion, true);
    });

    it("names the candidates an index can look up, or none when a scan is needed", () => {
        assert.deepEqual(compileQuery("nginx | apache2 (>= 2)").candidateNames, new Set(["nginx", "apache2"]));
        assert.deepEqual(compileQuery("nginx, Priority (optional)").candidateNames, new Set(["nginx"]));
        assert.deepEqual(compileQuery("Name (nginx)").candidateNames, new Set(["nginx"]));
        assert.equal(compileQuery("nginx | Priority (optional)").candidateNames, undefined);
        assert.equal(compileQuery("!nginx").candidateNames, undefined);
        assert.equal(compileQuery("Name (% ngin*)").candidateNames, undefined);
    });

    it("names the package whose relation field cannot be parsed", () => {
        const [broken] = records(`
            Package: broken
            Version: 1
            Architecture: amd64
            Provides: foo (>= 
        `);
        assert.throws(
            () => compileQuery("foo").matches(broken!),
            (err: Error) => {
                assert.ok(hasCode(err, "ERR_PARSE"));
                assert.match(err.message, /^package broken 1 \(amd64\), field Provides: /);
                return true;
            },
        );
    });

    it("keeps the parsed tree", () => {
        assert.deepEqual(compileQuery("nginx").tree, new DependencyNode("nginx"));
        assert.deepEqual(compileQuery("Essential").tree, new FieldNode("Essential"));
    });
});
