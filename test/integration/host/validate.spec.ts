import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as openpgp from "openpgp";
import { hasCode } from "../../../provider/errors";
import { operations } from "../../../provider/host/operations";
import type { HostMirrorSpec } from "../../../provider/host/types";
import { validateHostMirrorSpec } from "../../../provider/host/validate";
import { makeTlsMaterial, type TlsMaterial } from "../../harness/fixtures/tls";

describe("HostMirrorConfig validation", function () {
    this.timeout(30_000);
    let root: string;
    let tls: TlsMaterial;
    let publicKey: string;
    let privateKey: string;

    before(async () => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-validate-"));
        tls = await makeTlsMaterial();
        ({ publicKey, privateKey } = await openpgp.generateKey({
            type: "curve25519",
            userIDs: [{ name: "t", email: "t@example.invalid" }],
            format: "armored",
        }));
    });
    after(async () => {
        fs.rmSync(root, { recursive: true, force: true });
        await tls.close();
    });

    const valid = (): HostMirrorSpec => ({
        name: "site",
        target: { local: { root } },
        registries: [{ source: "quay.io", mirrors: ["mirror.local:5000", "[::1]:5000/ns", "127.0.0.1:5000"] }],
        caCertificates: [{ name: "site-ca", pem: tls.caCertPem }],
        apt: [
            { name: "deb", uris: ["http://m/debian"], suites: ["bookworm"], components: ["main"], signedBy: publicKey },
        ],
    });

    it("accepts valid input", async () => {
        assert.deepEqual(await validateHostMirrorSpec(valid()), []);
    });

    /** Each bad input: the argument it must name and words the message must contain. */
    const cases: [string, (s: HostMirrorSpec) => void, string, RegExp][] = [
        [
            "empty registries[].source",
            (s) => (s.registries![0].source = ""),
            "registries[0].source",
            /must not be empty/,
        ],
        [
            "a mirror with a scheme",
            (s) => (s.registries![0].mirrors[1] = "https://mirror.local:5000"),
            "registries[0].mirrors[1]",
            /has a scheme.*without "https:\/\/"/,
        ],
        ["no mirrors", (s) => (s.registries![0].mirrors = []), "registries[0].mirrors", /at least one mirror/],
        ["a name with /", (s) => (s.name = "a/b"), "name", /not a plain file name/],
        [
            "a name with ..",
            (s) => (s.caCertificates![0].name = ".."),
            "caCertificates[0].name",
            /not a plain file name/,
        ],
        ["an apt name with ..", (s) => (s.apt![0].name = "x..y"), "apt[0].name", /no '\/' or '\.\.'/],
        [
            "a PEM that is not a certificate",
            (s) => (s.caCertificates![0].pem = tls.keyPem),
            "caCertificates[0].pem",
            /not a PEM certificate/,
        ],
        [
            "a certificate bundle that also holds the private key",
            (s) => (s.caCertificates![0].pem = `${tls.caCertPem}\n${tls.keyPem}`),
            "caCertificates[0].pem",
            /holds a private key: give the CA certificate\(s\) only/,
        ],
        [
            "a certificate block that does not parse",
            (s) => (s.caCertificates![0].pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "caCertificates[0].pem",
            /certificate 1 does not parse/,
        ],
        [
            "an armored key that does not parse",
            (s) =>
                (s.apt![0].signedBy =
                    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n"),
            "apt[0].signedBy",
            /not an armored OpenPGP public key/,
        ],
        ["a private key as signedBy", (s) => (s.apt![0].signedBy = privateKey), "apt[0].signedBy", /is a private key/],
        [
            "a root that does not exist",
            (s) => (s.target = { local: { root: path.join(root, "missing") } }),
            "target.local.root",
            /does not exist/,
        ],
        ["a relative root", (s) => (s.target = { local: { root: "etc" } }), "target.local.root", /absolute path/],
        ["an apt URI without scheme", (s) => (s.apt![0].uris = ["m/debian"]), "apt[0].uris[0]", /not a URI/],
        ["no components", (s) => (s.apt![0].components = []), "apt[0].components", /at least one component/],
        [
            "two certificates with one name",
            (s) => s.caCertificates!.push({ ...s.caCertificates![0] }),
            "caCertificates[1].name",
            /used twice/,
        ],
    ];

    for (const [title, mutate, argument, message] of cases) {
        it(`rejects ${title}, naming ${argument}, and writes nothing`, async () => {
            const spec = valid();
            mutate(spec);
            const problems = await validateHostMirrorSpec(spec);
            const hit = problems.find((p) => p.argument === argument);
            assert.ok(hit, `no problem for ${argument}: ${JSON.stringify(problems)}`);
            assert.match(hit.problem, message);

            // The provider's check reports it as a failure on that property ...
            const checked = await operations.check({}, spec);
            assert.ok(checked.failures.some((f) => f.property === argument));
            // ... and create refuses before touching the root.
            if (fs.existsSync(root)) {
                await assert.rejects(operations.create(spec), (err) => hasCode(err, "ERR_INVALID_ARGUMENT"));
                assert.deepEqual(fs.readdirSync(root), []);
            }
        });
    }
});
