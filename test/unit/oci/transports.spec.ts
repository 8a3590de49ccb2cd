import assert from "node:assert/strict";
import { formatImageLocation, parseImageLocation } from "../../../provider/oci/transports";
import type { ImageLocation } from "../../../provider/oci/types";

const D = `sha256:${"ab".repeat(32)}`;

describe("oci/transports", () => {
    it("parses each transport and formats canonical strings back unchanged", () => {
        const cases: [string, ImageLocation][] = [
            [
                "docker://nginx:1.27",
                { transport: "docker", reference: { domain: "docker.io", path: "library/nginx", tag: "1.27" } },
            ],
            [
                `docker://quay.io/org/app:v1@${D}`,
                { transport: "docker", reference: { domain: "quay.io", path: "org/app", tag: "v1", digest: D } },
            ],
            [
                "docker://localhost:5000/app",
                { transport: "docker", reference: { domain: "localhost:5000", path: "app" } },
            ],
            ["oci:/srv/layout", { transport: "oci", path: "/srv/layout" }],
            ["oci:/srv/layout:app-1.0", { transport: "oci", path: "/srv/layout", reference: "app-1.0" }],
            ["oci:relative/dir:org/app:1", { transport: "oci", path: "relative/dir", reference: "org/app:1" }],
            ["oci-archive:/tmp/a.tar", { transport: "oci-archive", path: "/tmp/a.tar" }],
            ["oci-archive:/tmp/a.tar:v1", { transport: "oci-archive", path: "/tmp/a.tar", reference: "v1" }],
        ];
        for (const [input, want] of cases) {
            const loc = parseImageLocation(input);
            assert.deepEqual(loc, want, input);
            assert.equal(formatImageLocation(loc), input, input);
            assert.deepEqual(parseImageLocation(formatImageLocation(loc)), loc, input);
        }
    });

    it("formats docker locations in their familiar form", () => {
        assert.equal(formatImageLocation(parseImageLocation("docker://docker.io/library/nginx")), "docker://nginx");
        assert.equal(formatImageLocation(parseImageLocation("docker://index.docker.io/u/a:v")), "docker://u/a:v");
        assert.equal(formatImageLocation(parseImageLocation("oci:/d:")), "oci:/d");
    });

    it("names the string and lists the known transports for an unknown transport", () => {
        for (const input of ["dir:/tmp/x", "nginx", "containers-storage:foo"]) {
            assert.throws(() => parseImageLocation(input), {
                code: "ERR_PARSE",
                message: new RegExp(
                    `^invalid image location "${input}": .*known transports are "docker:", "oci:", "oci-archive:"`,
                ),
            });
        }
    });

    it("rejects malformed locations", () => {
        const cases: [string, RegExp][] = [
            ["docker:nginx", /"docker:\/\/host\/repo/],
            ["docker://Nginx", /must be lower-case/],
            ["oci:", /layout directory path is empty/],
            ["oci::tag", /path is empty/],
            ["oci-archive:/a.tar:bad name", /"bad name" is not a valid image reference name/],
            ["oci:/d:-x", /"-x" is not a valid/],
        ];
        for (const [input, message] of cases) {
            assert.throws(
                () => parseImageLocation(input),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" &&
                    err.message.startsWith(`invalid image location "${input}"`) &&
                    message.test(err.message),
                input,
            );
        }
    });
});
