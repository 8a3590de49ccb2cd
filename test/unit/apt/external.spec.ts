import assert from "node:assert/strict";
import { type FetchedDependency, resolveAcross } from "../../../provider/apt/external";
import { resolve } from "../../../provider/apt/resolver";
import type { PackageRecord } from "../../../provider/apt/types";
import { hasCode } from "../../../provider/errors";
import { records } from "./query/records";

/** Dependencies satisfied by other sources: the resolver's `dependencySources` and `resolveAcross`. */

const keys = (packages: readonly PackageRecord[]) => packages.map((p) => `${p.name}_${p.version}_${p.architecture}`);

const security = records(`
    Package: openssh-server
    Version: 1:9.2p1-2+deb12u3
    Architecture: amd64
    Depends: libc6 (>= 2.36), libssl3 (>= 3.0.15), openssh-client (= 1:9.2p1-2+deb12u3)

    Package: openssh-client
    Version: 1:9.2p1-2+deb12u3
    Architecture: amd64
    Depends: libc6 (>= 2.36)
`);
const base = records(`
    Package: libc6
    Version: 2.36-9+deb12u9
    Architecture: amd64

    Package: libssl3
    Version: 3.0.11-1
    Architecture: amd64
    Depends: libc6 (>= 2.34)

    Package: libc6
    Version: 2.36-9+deb12u9
    Architecture: arm64
`);
const updates = records(`
    Package: libssl3
    Version: 3.0.15-1~deb12u1
    Architecture: amd64
    Depends: libc6 (>= 2.36)
`);

function dependency(
    packages: PackageRecord[],
    overrides: Partial<FetchedDependency> & { argument: string; distribution: string },
): FetchedDependency {
    return {
        packages,
        architectures: ["amd64"],
        url: `http://127.0.0.1:1/${overrides.distribution}`,
        origin: `http://127.0.0.1:1/${overrides.distribution}/dists/${overrides.distribution} main`,
        ...overrides,
    };
}

const across = (dependencies: FetchedDependency[], queries = ["openssh-server"]) =>
    resolveAcross({
        packages: security,
        queries,
        architectures: ["amd64"],
        withDeps: true,
        followRecommends: false,
        origin: "http://127.0.0.1:1/security/dists/bookworm-security main",
        dependencies,
    });

function caught(fn: () => unknown): Error & { code?: string; argument?: string } {
    try {
        fn();
    } catch (err) {
        return err as Error;
    }
    assert.fail("expected an error");
}

describe("apt resolver across sources", () => {
    it("without other sources the closure fails as before; with them, it takes the newest from each", () => {
        assert.ok(
            hasCode(
                caught(() =>
                    resolve({
                        packages: security,
                        queries: ["openssh-server"],
                        architectures: ["amd64"],
                        withDeps: true,
                    }),
                ),
                "ERR_UNSATISFIABLE",
            ),
        );
        const result = resolve({
            packages: security,
            queries: ["openssh-server"],
            architectures: ["amd64"],
            withDeps: true,
            dependencySources: [{ packages: base }, { packages: updates }],
        });
        assert.deepEqual(keys(result.packages), [
            "openssh-client_1:9.2p1-2+deb12u3_amd64",
            "openssh-server_1:9.2p1-2+deb12u3_amd64",
        ]);
        assert.deepEqual(
            result.external.map((c) => [keys([c.package])[0], c.source, c.query, c.relation, c.only]),
            [
                ["libc6_2.36-9+deb12u9_amd64", 0, 0, "libc6 (>= 2.36)", true],
                // Only the updates suite satisfies the version condition.
                ["libssl3_3.0.15-1~deb12u1_amd64", 1, 0, "libssl3 (>= 3.0.15)", true],
            ],
        );
    });

    it("the newest candidate wins wherever it is; a tie goes to the source that holds it, then this one", () => {
        const own = records(`
            Package: app
            Version: 1.0
            Architecture: amd64
            Depends: lib

            Package: lib
            Version: 1.0
            Architecture: amd64
        `);
        const other = records(`
            Package: lib
            Version: 2.0
            Architecture: amd64
        `);
        const same = records(`
            Package: lib
            Version: 1.0
            Architecture: amd64
        `);
        const run = (packages: PackageRecord[], holds?: (p: PackageRecord) => boolean) =>
            resolve({
                packages: own,
                queries: ["app"],
                architectures: ["amd64"],
                withDeps: true,
                dependencySources: [{ packages, holds }],
            });
        const newer = run(other);
        assert.deepEqual(keys(newer.packages), ["app_1.0_amd64"]);
        assert.deepEqual(keys(newer.external.map((c) => c.package)), ["lib_2.0_amd64"]);
        assert.equal(newer.external[0]!.only, false, "this suite has an older lib that satisfies it too");
        assert.deepEqual(keys(run(same).packages), ["app_1.0_amd64", "lib_1.0_amd64"]);
        assert.deepEqual(keys(run(same, () => true).packages), ["app_1.0_amd64"]);
    });

    it("records external choices as name/arch → version from <url> <suite>", () => {
        const result = across([
            dependency(base, { argument: "dependencies.from[0]", distribution: "bookworm" }),
            dependency(updates, { argument: "dependencies.from[1]", distribution: "bookworm-updates" }),
        ]);
        assert.deepEqual(result.external, {
            "libc6/amd64": "2.36-9+deb12u9 from http://127.0.0.1:1/bookworm bookworm",
            "libssl3/amd64": "3.0.15-1~deb12u1 from http://127.0.0.1:1/bookworm-updates bookworm-updates",
        });
        assert.deepEqual(keys(result.packages), [
            "openssh-client_1:9.2p1-2+deb12u3_amd64",
            "openssh-server_1:9.2p1-2+deb12u3_amd64",
        ]);
    });

    it("a candidate of another AptMirror must be in its lock: the error names the query, the dependency and the mirror", () => {
        const err = caught(() =>
            across([
                dependency(base, {
                    argument: "dependencies.from[0]",
                    distribution: "bookworm",
                    mirror: 'AptMirror "bookworm"',
                    lock: { "libssl3/amd64": "3.0.11-1" },
                }),
                dependency(updates, {
                    argument: "dependencies.from[1]",
                    distribution: "bookworm-updates",
                    mirror: 'AptMirror "updates"',
                    lock: { "libssl3/amd64": "3.0.15-1~deb12u1" },
                }),
            ]),
        );
        assert.equal(err.code, "ERR_UNSATISFIABLE");
        assert.equal(err.argument, "packages[0]");
        assert.equal(
            err.message,
            `packages[0] "openssh-server": dependency libc6 (>= 2.36) is satisfied only by bookworm's libc6 2.36-9+deb12u9, which AptMirror "bookworm"'s lock does not hold: add it to that mirror's packages`,
        );
    });

    it("a dependency satisfied nowhere lists where it looked: this suite and each source", () => {
        const err = caught(() =>
            across([dependency(base, { argument: "dependencies.from[0]", distribution: "bookworm" })]),
        );
        assert.equal(err.code, "ERR_UNSATISFIABLE");
        assert.match(
            err.message,
            /openssh-server 1:9\.2p1-2\+deb12u3 \(amd64\) Depends "libssl3 \(>= 3\.0\.15\)": nothing satisfies it/,
        );
        assert.match(err.message, /this suite \(http:\/\/127\.0\.0\.1:1\/security\/dists\/bookworm-security main\)/);
        assert.match(
            err.message,
            /dependencies\.from\[0\] http:\/\/127\.0\.0\.1:1\/bookworm bookworm \(http:\/\/127\.0\.0\.1:1\/bookworm\/dists\/bookworm main\)/,
        );
    });

    it("a source of other architectures is refused naming its argument", () => {
        const err = caught(() =>
            across([
                dependency(base, {
                    argument: "dependencies.from[0]",
                    distribution: "bookworm",
                    mirror: 'AptMirror "bookworm"',
                    architectures: ["amd64", "arm64"],
                }),
            ]),
        );
        assert.equal(err.argument, "dependencies.from[0]");
        assert.match(
            err.message,
            /^dependencies\.from\[0\]: architectures differ: AptMirror "bookworm" reads amd64 arm64, this mirror reads amd64/,
        );
    });
});
