import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { aptWithAptMirrors, registriesWithImageMirrors } from "../../../sdk/hostMirrorWiring";

/** The value of a known Output. */
function resolved<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

describe("HostMirrorConfig inputs from ImageMirror and AptMirror outputs", () => {
    it("appends each ImageMirror's registries entries to registries", async () => {
        const got = await resolved(
            registriesWithImageMirrors(
                [{ source: "ghcr.io", mirrors: ["m:5000/ghcr"] }],
                [
                    {
                        registries: pulumi.output([
                            { source: "quay.io", mirrors: ["m:5000/quay.io"], mirrorByDigestOnly: true },
                        ]),
                    },
                    { registries: pulumi.output([{ source: "docker.io", mirrors: ["m:5000/docker.io"] }]) },
                ],
            ),
        );
        assert.deepEqual(got, [
            { source: "ghcr.io", mirrors: ["m:5000/ghcr"] },
            { source: "quay.io", mirrors: ["m:5000/quay.io"], mirrorByDigestOnly: true },
            { source: "docker.io", mirrors: ["m:5000/docker.io"] },
        ]);
    });

    it("makes an AptMirror's published suite a deb822 source at the URL hosts reach", async () => {
        const mirror = {
            publish: pulumi.output({ root: "/srv/mirror", prefix: "debian", distribution: "bookworm-site" }),
            source: pulumi.output({
                url: "http://upstream.example/debian",
                distribution: "bookworm",
                components: ["main", "contrib"],
                architectures: ["amd64"],
            }),
            publicKey: pulumi.output("KEY"),
        };
        const got = await resolved(aptWithAptMirrors([], [{ mirror, url: pulumi.output("http://mirror.site:8080/") }]));
        assert.deepEqual(got, [
            {
                name: "debian-bookworm-site",
                uris: ["http://mirror.site:8080/debian"],
                suites: ["bookworm-site"],
                components: ["main", "contrib"],
                architectures: ["amd64"],
                signedBy: "KEY",
            },
        ]);
        // The suite defaults to the source's distribution; a name given is kept.
        const plain = {
            ...mirror,
            publish: pulumi.output({ root: "/srv/mirror", prefix: "deb/sec" }),
        };
        const named = await resolved(aptWithAptMirrors(undefined, [{ mirror: plain, url: "http://m", name: "sec" }]));
        assert.equal(named[0]!.name, "sec");
        assert.deepEqual(named[0]!.suites, ["bookworm"]);
        assert.deepEqual(named[0]!.uris, ["http://m/deb/sec"]);
    });

    it("names the argument when the AptMirror does not say its components", async () => {
        const mirror = {
            publish: pulumi.output({ root: "/srv", prefix: "debian" }),
            source: pulumi.output({ url: "http://u/debian", distribution: "bookworm" }),
            publicKey: pulumi.output("KEY"),
        };
        const out = aptWithAptMirrors([], [{ mirror, url: "http://m" }]);
        const err = await (out as unknown as { promise(): Promise<unknown> }).promise().then(
            () => new Error("no error"),
            (e: Error) => e,
        );
        assert.match(err.message, /^aptMirrors\[0\]\.mirror: the AptMirror's source lists no components/);
    });
});
