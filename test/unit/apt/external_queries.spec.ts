import assert from "node:assert/strict";
import { type FetchedDependency, resolveAcross } from "../../../provider/apt/external";
import { resolve } from "../../../provider/apt/resolver";
import type { PackageRecord } from "../../../provider/apt/types";
import { records } from "./query/records";

/**
 * Queries with `dependencies.from`: resolved as `apt-get install` on a host with all the sources
 * would, the candidate being the newest version among this suite and the others.
 */

const keys = (packages: readonly PackageRecord[]) => packages.map((p) => `${p.name}_${p.version}_${p.architecture}`);

const base = records(`
    Package: nginx
    Version: 1.22.1-9
    Architecture: amd64
    Depends: libc6 (>= 2.34), nginx-common (= 1.22.1-9)

    Package: nginx-common
    Version: 1.22.1-9
    Architecture: all

    Package: libc6
    Version: 2.36-9+deb12u10
    Architecture: amd64

    Package: curl
    Version: 7.88.1-10+deb12u12
    Architecture: amd64
    Depends: libc6 (>= 2.34)

    Package: tzdata
    Version: 2024a-0+deb12u1
    Architecture: all
`);
const security = records(`
    Package: curl
    Version: 7.88.1-10+deb12u8
    Architecture: amd64
    Depends: libc6 (>= 2.34)

    Package: openssh-server
    Version: 1:9.2p1-2+deb12u6
    Architecture: amd64
    Depends: libc6 (>= 2.36)

    Package: tzdata
    Version: 2025b-0+deb12u1
    Architecture: all
`);

const from = (lock?: Record<string, string>): FetchedDependency => ({
    argument: "dependencies.from[0]",
    ...(lock === undefined ? {} : { mirror: 'AptMirror "bookworm"', lock }),
    packages: base,
    architectures: ["amd64"],
    url: "http://127.0.0.1:1/debian",
    distribution: "bookworm",
    origin: "http://127.0.0.1:1/debian/dists/bookworm main",
});

const across = (queries: string[], lock?: Record<string, string>, withDeps = true) =>
    resolveAcross({
        packages: security,
        queries,
        architectures: ["amd64"],
        withDeps,
        followRecommends: false,
        origin: "http://127.0.0.1:1/debian-security/dists/bookworm-security main",
        dependencies: [from(lock)],
    });

/** The lock the base mirror would have: everything it can copy. */
const baseLock = Object.fromEntries(base.map((p) => [`${p.name}/${p.architecture}`, p.version]));

function caught(fn: () => unknown): Error & { code?: string; argument?: string } {
    try {
        fn();
    } catch (err) {
        return err as Error;
    }
    assert.fail("expected an error");
}

describe("apt queries across sources (dependencies.from)", () => {
    it("a query found only in the other mirror is external, with its dependencies", () => {
        const result = across(["nginx"], baseLock);
        assert.deepEqual(keys(result.packages), []);
        assert.deepEqual(result.external, {
            "libc6/amd64": "2.36-9+deb12u10 from http://127.0.0.1:1/debian bookworm",
            "nginx-common/all": "1.22.1-9 from http://127.0.0.1:1/debian bookworm",
            "nginx/amd64": "1.22.1-9 from http://127.0.0.1:1/debian bookworm",
        });
    });

    it("a query found in both, newer here, is copied", () => {
        const result = across(["tzdata"], baseLock);
        assert.deepEqual(keys(result.packages), ["tzdata_2025b-0+deb12u1_all"]);
        assert.deepEqual(result.external, {});
    });

    it("a query found in both, newer there, is external (and this suite's older version is not copied)", () => {
        const result = across(["curl", "openssh-server"], baseLock);
        assert.deepEqual(keys(result.packages), ["openssh-server_1:9.2p1-2+deb12u6_amd64"]);
        assert.deepEqual(result.external, {
            "curl/amd64": "7.88.1-10+deb12u12 from http://127.0.0.1:1/debian bookworm",
            "libc6/amd64": "2.36-9+deb12u10 from http://127.0.0.1:1/debian bookworm",
        });
    });

    it("a query matching nowhere is an error naming the query and every place searched", () => {
        const err = caught(() => across(["nginx", "no-such-package"], baseLock));
        assert.equal(err.code, "ERR_NOT_FOUND");
        assert.equal(err.argument, "packages[1]");
        assert.equal(
            err.message,
            `packages[1] "no-such-package" matches nothing in ` +
                "this suite (http://127.0.0.1:1/debian-security/dists/bookworm-security main), " +
                `dependencies.from[0] AptMirror "bookworm" (http://127.0.0.1:1/debian/dists/bookworm main)` +
                " (architectures amd64 and all)",
        );
    });

    it("a query's candidate in another AptMirror must be in its lock: the error names query and mirror", () => {
        const err = caught(() => across(["nginx"], { "libc6/amd64": "2.36-9+deb12u10" }));
        assert.equal(err.code, "ERR_UNSATISFIABLE");
        assert.equal(err.argument, "packages[0]");
        assert.match(
            err.message,
            /^packages\[0\] "nginx": matches only bookworm's nginx 1\.22\.1-9, which AptMirror "bookworm"'s lock does not hold: add it to that mirror's packages$/m,
        );
        const newer = caught(() => across(["curl"], { "libc6/amd64": "2.36-9+deb12u10", "curl/amd64": "7.0-1" }));
        assert.match(
            newer.message,
            /^packages\[0\] "curl": matches, newest, bookworm's curl 7\.88\.1-10\+deb12u12, which AptMirror "bookworm"'s lock does not hold \(it holds curl 7\.0-1\)/,
        );
    });

    it("a query restricting versions keeps this suite's matches, else the others'", () => {
        const here = across(["curl (>= 7.88)"], baseLock, false);
        assert.deepEqual(keys(here.packages), ["curl_7.88.1-10+deb12u8_amd64"]);
        assert.deepEqual(here.external, {});
        const there = across(["nginx (>= 1.22)"], baseLock, false);
        assert.deepEqual(keys(there.packages), []);
        assert.deepEqual(Object.keys(there.external), ["nginx/amd64"]);
    });

    it("without other sources a query matching nothing in this suite still fails, naming this suite only", () => {
        const err = caught(() =>
            resolve({
                packages: security,
                queries: ["nginx"],
                architectures: ["amd64"],
                withDeps: true,
                origin: "bookworm-security main",
            }),
        );
        assert.equal(err.code, "ERR_NOT_FOUND");
        assert.equal(
            err.message,
            'packages[0] "nginx" matches nothing in bookworm-security main (architectures amd64 and all)',
        );
    });

    it("a field query matches across sources too, keeping the newest of each name", () => {
        const result = resolve({
            packages: security,
            queries: ["Name (% tz*)"],
            architectures: ["amd64"],
            withDeps: false,
            dependencySources: [{ packages: base }],
        });
        assert.deepEqual(keys(result.packages), ["tzdata_2025b-0+deb12u1_all"]);
        assert.deepEqual(result.external, []);
    });
});
