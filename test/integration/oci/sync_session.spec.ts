/**
 * `syncImages` (what the ImageMirror provider runs) works as one session: one client per
 * registry (the registry is pinged once however many images), blobs shared between repositories
 * mounted at the destination instead of uploaded again, and progress lines while it copies with a
 * last line holding the totals. Judged by the registries' own access logs and by skopeo.
 */
import assert from "node:assert/strict";
import { digestOf } from "../../../provider/oci/digest";
import { type ImageMirrorSpec, syncImages } from "../../../provider/oci/mirror";
import { progressReporter } from "../../../provider/oci/operations";
import { RegistrySession } from "../../../provider/oci/registry_transport";
import { type RegistryServer, startRegistry } from "../../harness/servers/registry";
import { cleanupAll } from "../../harness/tmp";
import { singleLayout, skopeo, skopeoRaw } from "./registry_helpers";

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe("syncImages: one registry session per sync (real docker-registry)", function () {
    this.timeout(300_000);
    let source: RegistryServer;
    let mirror: RegistryServer;
    const repos = ["team/one", "team/two", "team/three"];
    let digest: string;

    before(async () => {
        [source, mirror] = await Promise.all([startRegistry(), startRegistry()]);
        // The same image (same blobs) in three repositories, layers large enough to be worth mounting.
        const layout = await singleLayout("v1", 256 * 1024, 7);
        for (const repo of repos) {
            await skopeo([
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                layout,
                `docker://${source.host}/${repo}:v1`,
            ]);
        }
        digest = digestOf(await skopeoRaw(`docker://${source.host}/${repos[0]}:v1`));
    });

    after(async () => {
        await Promise.all([source?.stop(), mirror?.stop()]);
        await cleanupAll();
    });

    it("pings each registry once, mounts shared blobs across repositories, and prints progress with totals", async () => {
        const spec: ImageMirrorSpec = {
            images: Object.fromEntries(repos.map((r) => [`${source.host}/${r}:v1`, digest])),
            destination: `docker://${mirror.host}/mirror`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [source.host, mirror.host] },
            // One blob at a time: the first repository's upload is recorded before the next asks.
            concurrency: 1,
        };
        const sourceLogFrom = source.log().length;
        const mirrorLogFrom = mirror.log().length;
        const lines: string[] = [];
        const state = await syncImages(spec, {
            onProgress: progressReporter(spec.destination, (line) => lines.push(line)),
            progressIntervalMs: 1,
            registry: { insecure: "http" },
        });
        // The access log line is written when the response is done: give the last ones a moment.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const sourceLog = source.log().slice(sourceLogFrom);
        const mirrorLog = mirror.log().slice(mirrorLogFrom);
        assert.equal(Object.keys(state.mirrored).length, 3);
        for (const repo of repos) {
            assert.equal(digestOf(await skopeoRaw(`docker://${mirror.host}/mirror/${repo}:v1`)), digest);
        }

        assert.equal(count(sourceLog, /"GET \/v2\/ HTTP/g), 1, "the source registry is pinged once");
        assert.equal(
            count(mirrorLog, /"GET \/v2\/ HTTP/g),
            1,
            `the mirror registry is pinged once:\n${mirrorLog
                .split("\n")
                .filter((l) => l.includes("/v2/ "))
                .join("\n")}`,
        );
        // Two blobs (config and layer) per image: uploaded for the first repository, mounted for the others.
        const mounted = count(
            mirrorLog,
            /"POST \/v2\/mirror\/team\/\w+\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]+&from=mirror%2Fteam%2F\w+ HTTP\/1\.1" 201/g,
        );
        assert.equal(
            mounted,
            4,
            `4 blobs mounted, not uploaded again:\n${mirrorLog
                .split("\n")
                .filter((l) => l.includes("uploads"))
                .join("\n")}`,
        );
        assert.equal(
            count(mirrorLog, /"PUT \/v2\/mirror\/team\/\w+\/blobs\/uploads\/[^"]*digest=/g),
            2,
            "2 blobs uploaded",
        );

        const last = lines[lines.length - 1]!;
        assert.match(last, new RegExp(`^\\[image docker://${mirror.host}/mirror\\] done: 3/3 images, `));
        assert.match(last, /2 blobs copied, 4 present/);
        assert.ok(
            lines.slice(0, -1).some((l) => /\/3 images \(\d+%\), [\d.]+ MiB, [\d.]+ MiB\/s, .* (left|unknown)/.test(l)),
            `a progress line while copying:\n${lines.join("\n")}`,
        );
    });

    it("a re-sync of an unchanged lock asks the mirror one tag per image and writes nothing", async () => {
        const spec: ImageMirrorSpec = {
            images: Object.fromEntries(repos.map((r) => [`${source.host}/${r}:v1`, digest])),
            destination: `docker://${mirror.host}/again`,
            repositoryPath: "strip-registry",
            tls: { insecureRegistries: [source.host, mirror.host] },
        };
        const first = await syncImages(spec, { registry: { insecure: "http" } });
        await new Promise((resolve) => setTimeout(resolve, 200));
        const from = mirror.log().length;
        const second = await syncImages(spec, { previous: first.pushed, registry: { insecure: "http" } });
        await new Promise((resolve) => setTimeout(resolve, 200));
        const requests = mirror
            .log()
            .slice(from)
            .split("\n")
            .flatMap((l) => /^\S+ - - \[[^\]]+\] "(\w+) (\S+)/.exec(l)?.slice(1, 3).join(" ") ?? []);
        assert.deepEqual(
            requests.filter((r) => !r.startsWith("GET /v2/ ") && r !== "GET /v2/").sort(),
            repos.map((r) => `HEAD /v2/again/${r}/manifests/v1`).sort(),
        );
        assert.deepEqual(second.mirrored, first.mirrored);
        assert.equal(second.bytes, first.bytes);
        assert.equal(second.blobCount, first.blobCount);
        assert.deepEqual(second.pushed, first.pushed);
    });

    it("a session gives one client per registry, shared by its holders, and closes once", async () => {
        const session = new RegistrySession(() => ({ insecure: "http" }));
        const a = session.client(source.host);
        const b = session.client(source.host);
        assert.equal(a, b);
        session.client(mirror.host);
        assert.deepEqual(session.domains.sort(), [mirror.host, source.host].sort());
        await a.close();
        // Still held by `b` and the session.
        await b
            .send({ method: "GET", url: "/v2/", repository: "team/one", actions: "pull", what: "ping" })
            .then((r) => r.body.dump());
        await b.close();
        await session.close();
        await assert.rejects(
            b.send({ method: "GET", url: "/v2/", repository: "team/one", actions: "pull", what: "ping" }),
            /closed/,
        );
        assert.throws(() => session.client(source.host), /closed/);
    });
});
