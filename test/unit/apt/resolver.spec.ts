import assert from "node:assert/strict";
import { type ResolveOptions, resolve, type UnsatisfiableDependenciesError } from "../../../provider/apt/resolver";
import type { PackageRecord } from "../../../provider/apt/types";
import { hasCode } from "../../../provider/errors";
import { record, records } from "./query/records";

function keys(packages: readonly PackageRecord[]): string[] {
    return packages.map((p) => `${p.name}_${p.version}_${p.architecture}`);
}

function run(packages: PackageRecord[], queries: string[], options: Partial<ResolveOptions> = {}): string[] {
    return keys(resolve({ packages, queries, architectures: ["amd64"], withDeps: true, ...options }).packages);
}

function unsatisfiable(fn: () => unknown): UnsatisfiableDependenciesError {
    let caught: unknown;
    try {
        fn();
    } catch (err) {
        caught = err;
    }
    assert.ok(hasCode(caught, "ERR_UNSATISFIABLE"), `expected ERR_UNSATISFIABLE, got ${String(caught)}`);
    return caught as UnsatisfiableDependenciesError;
}

describe("apt resolver", () => {
    describe("selection by query", () => {
        const pool = records(`
            Package: hello
            Version: 2.10-3
            Architecture: amd64

            Package: hello
            Version: 2.10-2
            Architecture: amd64

            Package: hello
            Version: 2.9-1
            Architecture: arm64

            Package: hello
            Version: 2.10-3
            Architecture: arm64

            Package: hello-doc
            Version: 2.10-3
            Architecture: all

            Package: hello
            Version: 2.10-3
            Architecture: i386
        `);

        it("keeps the newest version per name and architecture for a query without versions", () => {
            assert.deepEqual(run(pool, ["hello"], { architectures: ["amd64", "arm64"], withDeps: false }), [
                "hello_2.10-3_amd64",
                "hello_2.10-3_arm64",
            ]);
        });

        it("keeps every matching version when the query restricts versions", () => {
            assert.deepEqual(run(pool, ["hello (>= 2.10)"], { architectures: ["amd64", "arm64"], withDeps: false }), [
                "hello_2.10-2_amd64",
                "hello_2.10-3_amd64",
                "hello_2.10-3_arm64",
            ]);
            assert.deepEqual(run(pool, ["hello_2.10-2_amd64"], { withDeps: false }), ["hello_2.10-2_amd64"]);
        });

        it("ORs the queries and ignores architectures the mirror does not carry", () => {
            assert.deepEqual(run(pool, ["hello", "Name (% hello-*)"], { withDeps: false }), [
                "hello_2.10-3_amd64",
                "hello-doc_2.10-3_all",
            ]);
            assert.deepEqual(run(pool, ["hello {i386}"], { withDeps: false, architectures: [] }), [
                "hello_2.10-3_i386",
            ]);
        });

        it("fails with ERR_NOT_FOUND naming every query that matches nothing", () => {
            assert.throws(
                () => run(pool, ["hello", "no-such-package", "hello {i386}"]),
                (err: Error) => {
                    assert.ok(hasCode(err, "ERR_NOT_FOUND"));
                    assert.match(
                        err.message,
                        /^packages\[1\] "no-such-package", packages\[2\] "hello \{i386\}" match nothing/,
                    );
                    assert.doesNotMatch(err.message, /"hello",/);
                    assert.equal((err as { argument?: string }).argument, "packages[1]");
                    return true;
                },
            );
        });

        it("reports query syntax errors as ERR_PARSE", () => {
            assert.throws(() => run(pool, ["hello ("]), { code: "ERR_PARSE" });
        });
    });

    it("computes a plain closure, once per package", () => {
        const pool = records(`
            Package: app
            Version: 1.0
            Architecture: amd64
            Depends: libfoo (>= 1.2), libbar

            Package: libfoo
            Version: 1.3
            Architecture: amd64
            Depends: libc6

            Package: libbar
            Version: 0.9
            Architecture: amd64
            Depends: libc6 (>= 2.30)

            Package: libc6
            Version: 2.36-9
            Architecture: amd64

            Package: unrelated
            Version: 1
            Architecture: amd64
        `);
        assert.deepEqual(run(pool, ["app"]), [
            "app_1.0_amd64",
            "libbar_0.9_amd64",
            "libc6_2.36-9_amd64",
            "libfoo_1.3_amd64",
        ]);
        assert.deepEqual(run(pool, ["app"], { withDeps: false }), ["app_1.0_amd64"]);
    });

    it("picks the newest version that satisfies a versioned dependency", () => {
        const pool = records(`
            Package: app
            Version: 1.0
            Architecture: amd64
            Depends: lib (<< 2.0)

            Package: lib
            Version: 1.0
            Architecture: amd64

            Package: lib
            Version: 1.5
            Architecture: amd64

            Package: lib
            Version: 2.0
            Architecture: amd64
        `);
        assert.deepEqual(run(pool, ["app"]), ["app_1.0_amd64", "lib_1.5_amd64"]);
    });

    describe("alternatives", () => {
        const pool = records(`
            Package: mailer
            Version: 1
            Architecture: amd64
            Depends: missing-mta | exim4 | postfix

            Package: exim4
            Version: 4.96
            Architecture: amd64

            Package: postfix
            Version: 3.7
            Architecture: amd64

            Package: wants-postfix
            Version: 1
            Architecture: amd64
            Depends: postfix
        `);

        it("takes the first alternative that can be satisfied", () => {
            assert.deepEqual(run(pool, ["mailer"]), ["exim4_4.96_amd64", "mailer_1_amd64"]);
        });

        it("prefers an alternative the selection already holds", () => {
            assert.deepEqual(run(pool, ["mailer", "postfix"]), ["mailer_1_amd64", "postfix_3.7_amd64"]);
        });

        it("prefers an alternative that another dependency pulls in anyway", () => {
            const extra = record(`
                Package: suite
                Version: 1
                Architecture: amd64
                Depends: mailer, wants-postfix
            `);
            assert.deepEqual(run([...pool, extra], ["suite"]), [
                "mailer_1_amd64",
                "postfix_3.7_amd64",
                "suite_1_amd64",
                "wants-postfix_1_amd64",
            ]);
        });
    });

    describe("virtual packages", () => {
        it("satisfies an unversioned dependency through Provides, newest provider first", () => {
            const pool = records(`
                Package: app
                Version: 1
                Architecture: amd64
                Depends: awk

                Package: mawk
                Version: 1.3.4
                Architecture: amd64
                Provides: awk

                Package: gawk
                Version: 1:5.2.1
                Architecture: amd64
                Provides: awk
            `);
            assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "gawk_1:5.2.1_amd64"]);
        });

        it("prefers a real package over providers", () => {
            const pool = records(`
                Package: app
                Version: 1
                Architecture: amd64
                Depends: awk

                Package: awk
                Version: 1
                Architecture: amd64

                Package: gawk
                Version: 1:5.2.1
                Architecture: amd64
                Provides: awk
            `);
            assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "awk_1_amd64"]);
        });

        it("lets only versioned Provides satisfy versioned dependencies", () => {
            const pool = records(`
                Package: app
                Version: 1
                Architecture: amd64
                Depends: libvirt (>= 2.0)

                Package: plain-provider
                Version: 9
                Architecture: amd64
                Provides: libvirt

                Package: old-provider
                Version: 9
                Architecture: amd64
                Provides: libvirt (= 1.5)

                Package: good-provider
                Version: 1
                Architecture: amd64
                Provides: libvirt (= 2.1)
            `);
            assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "good-provider_1_amd64"]);
        });

        it("accepts a selected provider as satisfying", () => {
            const pool = records(`
                Package: app
                Version: 1
                Architecture: amd64
                Depends: awk

                Package: mawk
                Version: 1.3.4
                Architecture: amd64
                Provides: awk

                Package: gawk
                Version: 1:5.2.1
                Architecture: amd64
                Provides: awk
            `);
            assert.deepEqual(run(pool, ["app", "mawk"]), ["app_1_amd64", "mawk_1.3.4_amd64"]);
        });
    });

    it("follows Pre-Depends", () => {
        const pool = records(`
            Package: app
            Version: 1
            Architecture: amd64
            Pre-Depends: init-system-helpers (>= 1.54~)

            Package: init-system-helpers
            Version: 1.54~rc1
            Architecture: all

            Package: init-system-helpers
            Version: 1.53
            Architecture: all
        `);
        assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "init-system-helpers_1.54~rc1_all"]);
    });

    it("orders epochs and ~ as dpkg does", () => {
        const pool = records(`
            Package: app
            Version: 1
            Architecture: amd64
            Depends: lib (>= 1:1.0~), tool (<< 2.0~)

            Package: lib
            Version: 9.0
            Architecture: amd64

            Package: lib
            Version: 1:1.0~beta1
            Architecture: amd64

            Package: lib
            Version: 1:0.9
            Architecture: amd64

            Package: tool
            Version: 2.0~rc1
            Architecture: amd64

            Package: tool
            Version: 1.9
            Architecture: amd64
        `);
        assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "lib_1:1.0~beta1_amd64", "tool_1.9_amd64"]);
        const missing = unsatisfiable(() => run(pool.slice(0, 2).concat(pool.slice(3)), ["app"]));
        assert.deepEqual(
            missing.problems.map((p) => p.relation),
            ["lib (>= 1:1.0~)"],
        );
        assert.ok(run(pool, ["app", "tool_2.0~rc1_amd64"]).includes("tool_1.9_amd64"));
    });

    describe("architectures", () => {
        const pool = records(`
            Package: app
            Version: 1
            Architecture: amd64
            Depends: libfoo, data

            Package: app
            Version: 1
            Architecture: arm64
            Depends: libfoo, data

            Package: libfoo
            Version: 1
            Architecture: amd64

            Package: libfoo
            Version: 1
            Architecture: arm64

            Package: libfoo
            Version: 1
            Architecture: i386

            Package: data
            Version: 1
            Architecture: all
            Depends: helper

            Package: helper
            Version: 1
            Architecture: amd64

            Package: helper
            Version: 1
            Architecture: arm64

            Package: python3-foo
            Version: 1
            Architecture: all
            Depends: python3:any

            Package: python3
            Version: 3.11
            Architecture: arm64
            Multi-Arch: allowed

            Package: only-amd64
            Version: 1
            Architecture: amd64
            Depends: amd64-lib [amd64], arm-lib [arm64]

            Package: amd64-lib
            Version: 1
            Architecture: amd64
        `);

        it("resolves each architecture with its own packages and all packages", () => {
            assert.deepEqual(run(pool, ["app"], { architectures: ["amd64", "arm64"] }), [
                "app_1_amd64",
                "app_1_arm64",
                "data_1_all",
                "helper_1_amd64",
                "helper_1_arm64",
                "libfoo_1_amd64",
                "libfoo_1_arm64",
            ]);
            assert.deepEqual(run(pool, ["app {arm64}"], { architectures: ["amd64", "arm64"] }), [
                "app_1_arm64",
                "data_1_all",
                "helper_1_amd64",
                "helper_1_arm64",
                "libfoo_1_arm64",
            ]);
        });

        it("satisfies :any from another architecture with Multi-Arch: allowed", () => {
            assert.deepEqual(run(pool, ["python3-foo"], { architectures: ["amd64", "arm64"] }), [
                "python3_3.11_arm64",
                "python3-foo_1_all",
            ]);
        });

        it("fails a plain dependency that only another architecture satisfies", () => {
            const missing = unsatisfiable(() => run(pool, ["app"], { architectures: ["amd64", "i386"] }));
            assert.equal(missing.problems.length, 1);
            assert.equal(missing.problems[0]!.relation, "helper");
            assert.deepEqual(missing.problems[0]!.architectures, ["i386"]);
            assert.match(missing.message, /data 1 \(all\) Depends "helper": nothing satisfies it for i386/);
        });

        it("honours architecture restriction lists", () => {
            assert.deepEqual(run(pool, ["only-amd64"]), ["amd64-lib_1_amd64", "only-amd64_1_amd64"]);
        });
    });

    it("terminates on dependency cycles", () => {
        const pool = records(`
            Package: a
            Version: 1
            Architecture: amd64
            Depends: b

            Package: b
            Version: 1
            Architecture: amd64
            Depends: c | a

            Package: c
            Version: 1
            Architecture: all
            Pre-Depends: a (>= 1)
        `);
        assert.deepEqual(run(pool, ["a"]), ["a_1_amd64", "b_1_amd64"]);
        assert.deepEqual(run(pool, ["c"]), ["a_1_amd64", "b_1_amd64", "c_1_all"]);
    });

    describe("Recommends and Suggests", () => {
        const pool = records(`
            Package: app
            Version: 1
            Architecture: amd64
            Depends: lib
            Recommends: extra, gone
            Suggests: docs

            Package: lib
            Version: 1
            Architecture: amd64

            Package: extra
            Version: 1
            Architecture: amd64
            Depends: lib

            Package: docs
            Version: 1
            Architecture: all
        `);

        it("are not followed by default", () => {
            assert.deepEqual(run(pool, ["app"]), ["app_1_amd64", "lib_1_amd64"]);
        });

        it("are followed when asked, and unsatisfiable ones are returned instead of failing", () => {
            const result = resolve({
                packages: pool,
                queries: ["app"],
                architectures: ["amd64"],
                withDeps: true,
                followRecommends: true,
            });
            assert.deepEqual(keys(result.packages), ["app_1_amd64", "extra_1_amd64", "lib_1_amd64"]);
            assert.deepEqual(
                result.unsatisfiedWeak.map((p) => [p.package.name, p.field, p.relation, p.architectures]),
                [["app", "Recommends", "gone", ["amd64"]]],
            );
            assert.deepEqual(run(pool, ["app"], { followRecommends: true, followSuggests: true }), [
                "app_1_amd64",
                "docs_1_all",
                "extra_1_amd64",
                "lib_1_amd64",
            ]);
        });
    });

    it("reports every unsatisfiable dependency together", () => {
        const pool = records(`
            Package: app
            Version: 1.0-1
            Architecture: amd64
            Depends: libgone (>= 2), present, nothing-a | nothing-b

            Package: present
            Version: 1
            Architecture: amd64
            Pre-Depends: missing-too:any

            Package: other
            Version: 3
            Architecture: amd64
            Depends: libgone (>= 2)
        `);
        const err = unsatisfiable(() => run(pool, ["app", "other"]));
        assert.deepEqual(
            err.problems.map((p) => [p.package.name, p.package.version, p.field, p.relation]),
            [
                ["app", "1.0-1", "Depends", "libgone (>= 2)"],
                ["other", "3", "Depends", "libgone (>= 2)"],
                ["present", "1", "Pre-Depends", "missing-too:any"],
                ["app", "1.0-1", "Depends", "nothing-a | nothing-b"],
            ],
        );
        assert.match(err.message, /^packages: 4 unsatisfiable dependencies:\n/);
        assert.equal(err.argument, "packages");
        assert.match(
            err.message,
            /\n {2}app 1\.0-1 \(amd64\) Depends "libgone \(>= 2\)": nothing satisfies it for amd64/,
        );
        assert.match(err.message, /present 1 \(amd64\) Pre-Depends "missing-too:any"/);
        assert.match(err.message, /app 1\.0-1 \(amd64\) Depends "nothing-a \| nothing-b"/);
    });

    it("resolves a closed dependency set over a 60,000-package index", function () {
        this.timeout(60000);
        const packages: PackageRecord[] = [];
        const count = 60000;
        for (let i = 0; i < count; i++) {
            const deps = [`pkg${(i * 7 + 1) % count}`, `pkg${(i * 13 + 5) % count} (>= 1.0) | virt${i % 500}`];
            packages.push(
                record(`
                    Package: pkg${i}
                    Version: 1.${i % 10}
                    Architecture: ${i % 3 === 0 ? "all" : "amd64"}
                    Depends: ${deps.join(", ")}
                    Provides: virt${i % 1000}
                `),
            );
        }
        const queries = Array.from({ length: 50 }, (_, i) => `pkg${i * 1000}`);
        const result = resolve({ packages, queries, architectures: ["amd64"], withDeps: true });
        assert.ok(result.packages.length > 1000, `closure of ${result.packages.length}`);
        // Closed: every selected package's first (plain) dependency is selected too. Speed is
        // measured by the benchmark, not here.
        const selected = new Set(result.packages.map((p) => p.name));
        for (const name of queries) {
            assert.ok(selected.has(name), name);
        }
        for (const p of result.packages) {
            const i = Number(p.name.slice(3));
            assert.ok(selected.has(`pkg${(i * 7 + 1) % count}`), `${p.name} without its dependency`);
        }
    });
});
