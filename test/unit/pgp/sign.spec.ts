import assert from "node:assert/strict";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { hasCode } from "../../../provider/errors";
import { checkReleaseSignatures, loadSigningKey, type ReleaseSigner } from "../../../provider/pgp/sign";
import { type GpgKeyring, makeGpgKeyring } from "../../harness/fixtures/aptrepo";
import { run } from "../../harness/servers/process";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/** A Release text with the shapes that matter for signing: continuation lines, an empty-valued field. */
const RELEASE = [
    "Origin: pulumi-airgap",
    "Label: signing test",
    "Suite: stable",
    "Codename: test",
    "Date: Sat, 10 Aug 2024 09:50:42 UTC",
    "Architectures: amd64 arm64",
    "Components: main",
    "Description: a line with a dash",
    " -- and a continuation that starts with one",
    "SHA256:",
    " 0000000000000000000000000000000000000000000000000000000000000000                0 main/binary-amd64/Packages",
    "",
].join("\n");

/** gpgv against a keyring holding only `publicKeyArmored`, and `gpg --verify` in a fresh GNUPGHOME. */
async function verifyWithGnuPG(publicKeyArmored: string, files: Record<string, string>, args: readonly string[][]) {
    const dir = await makeTempDir("gpgv");
    const home = join(dir, "home");
    await run("mkdir", ["-p", home]);
    await chmod(home, 0o700);
    const env = { ...process.env, GNUPGHOME: home, LC_ALL: "C" };
    await writeFile(join(dir, "key.asc"), publicKeyArmored);
    const dearmored = await run("gpg", ["--batch", "--dearmor"], { input: Buffer.from(publicKeyArmored), env });
    await writeFile(join(dir, "keyring.gpg"), dearmored.stdoutBytes);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await run("gpg", ["--batch", "--import", join(dir, "key.asc")], { env });
    const results: { gpgv: number | null; gpg: number | null; output: string }[] = [];
    for (const a of args) {
        const gpgv = await run("gpgv", ["--keyring", join(dir, "keyring.gpg"), ...a], { cwd: dir, env, check: false });
        const gpg = await run("gpg", ["--batch", "--verify", ...a], { cwd: dir, env, check: false });
        results.push({ gpgv: gpgv.code, gpg: gpg.code, output: `${gpgv.stderr}\n${gpg.stderr}` });
    }
    await run("gpgconf", ["--homedir", home, "--kill", "all"], { env, check: false });
    return results;
}

describe("pgp/sign: signing Release for publishing", function () {
    this.timeout(120_000);
    let keyring: GpgKeyring;

    before(async () => {
        keyring = await makeGpgKeyring(["rsa", "ed25519"]);
    });
    after(async () => {
        await keyring?.close();
        await cleanupAll();
    });

    for (const kind of ["rsa", "ed25519"] as const) {
        it(`signs InRelease and Release.gpg with a ${kind} key that gpgv and gpg --verify accept`, async () => {
            const key = keyring.keys.find((k) => k.kind === kind)!;
            const signer = await loadSigningKey({ privateKey: key.privateKeyArmored });
            assert.deepEqual(signer.fingerprints, [key.fingerprint]);
            const signed = await signer.sign(RELEASE);
            assert.match(signed.inRelease, /^-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n/);
            assert.match(signed.releaseGpg, /^-----BEGIN PGP SIGNATURE-----\n/);
            const results = await verifyWithGnuPG(
                signer.publicKeyArmored,
                { InRelease: signed.inRelease, Release: RELEASE, "Release.gpg": signed.releaseGpg },
                [["InRelease"], ["Release.gpg", "Release"]],
            );
            for (const r of results) {
                assert.equal(r.gpgv, 0, r.output);
                assert.equal(r.gpg, 0, r.output);
            }
            // Our own check agrees, and the InRelease text is the Release text.
            const check = await checkReleaseSignatures(signer.publicKeyArmored, {
                release: Buffer.from(RELEASE),
                inRelease: signed.inRelease,
                releaseGpg: signed.releaseGpg,
            });
            assert.deepEqual(check, {
                inRelease: "valid",
                releaseGpg: "valid",
                inReleaseMatchesRelease: true,
                problems: [],
            });
        });
    }

    it("signs with every key of a block, and gpgv rejects a Release changed after signing", async () => {
        const signer = await loadSigningKey({ privateKey: keyring.keys.map((k) => k.privateKeyArmored).join("\n") });
        assert.deepEqual(
            signer.fingerprints,
            keyring.keys.map((k) => k.fingerprint),
        );
        const signed = await signer.sign(RELEASE);
        const tampered = RELEASE.replace("Suite: stable", "Suite: unstable");
        // gpgv exits non-zero when any signature is unverifiable, so its keyring holds both keys
        // (apt itself accepts one good signature by a trusted key among unknown ones).
        const results = await verifyWithGnuPG(
            signer.publicKeyArmored,
            {
                InRelease: signed.inRelease,
                "Bad-InRelease": signed.inRelease.replace("Suite: stable", "Suite: unstable"),
                Release: tampered,
                "Release.gpg": signed.releaseGpg,
            },
            [["InRelease"], ["Bad-InRelease"], ["Release.gpg", "Release"]],
        );
        assert.equal(results[0]!.gpgv, 0, results[0]!.output);
        assert.equal((results[0]!.output.match(/Good signature/g) ?? []).length, 4, "two signatures, gpgv and gpg");
        assert.notEqual(results[1]!.gpgv, 0, "a changed InRelease must not verify");
        assert.notEqual(results[2]!.gpgv, 0, "a changed Release must not verify against Release.gpg");
        const check = await checkReleaseSignatures(signer.publicKeyArmored, {
            release: Buffer.from(tampered),
            inRelease: signed.inRelease,
            releaseGpg: signed.releaseGpg,
        });
        assert.equal(check.inRelease, "valid");
        assert.equal(check.inReleaseMatchesRelease, false);
        assert.equal(check.releaseGpg, "invalid");
    });

    it("reports a signature by another key as invalid, and absent files as missing", async () => {
        const rsa = await loadSigningKey({ privateKey: keyring.keys[0]!.privateKeyArmored });
        const signed = await rsa.sign(RELEASE);
        const check = await checkReleaseSignatures(keyring.keys[1]!.publicKeyArmored, {
            release: Buffer.from(RELEASE),
            inRelease: signed.inRelease,
        });
        assert.equal(check.inRelease, "invalid");
        assert.equal(check.releaseGpg, "missing");
        assert.equal(check.problems.length, 1);
    });

    describe("encrypted keys", () => {
        let encrypted: string;
        let publicKey: string;

        before(async () => {
            const generated = await openpgp.generateKey({
                type: "ecc",
                curve: "ed25519Legacy",
                userIDs: [{ name: "Encrypted", email: "encrypted@example.invalid" }],
                passphrase: "correct horse",
                format: "armored",
            });
            encrypted = generated.privateKey;
            publicKey = generated.publicKey;
        });

        it("refuses a missing passphrase with the argument named", async () => {
            await assert.rejects(loadSigningKey({ privateKey: encrypted }), (err: Error & { argument?: string }) => {
                assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"));
                assert.equal(err.argument, "signing.passphrase");
                assert.equal(err.message, "signing.passphrase: the key is encrypted, give its passphrase");
                return true;
            });
        });

        it("refuses a wrong passphrase", async () => {
            await assert.rejects(
                loadSigningKey({ privateKey: encrypted, passphrase: "wrong" }),
                (err: Error & { argument?: string }) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") && err.argument === "signing.passphrase",
            );
        });

        it("signs once decrypted, and gpgv accepts the result", async () => {
            const signer: ReleaseSigner = await loadSigningKey({ privateKey: encrypted, passphrase: "correct horse" });
            const signed = await signer.sign(RELEASE);
            const results = await verifyWithGnuPG(
                publicKey,
                { InRelease: signed.inRelease, Release: RELEASE, "Release.gpg": signed.releaseGpg },
                [["InRelease"], ["Release.gpg", "Release"]],
            );
            for (const r of results) assert.equal(r.gpgv, 0, r.output);
        });
    });

    it("names signing.privateKey for text that is not a private key", async () => {
        for (const privateKey of ["", "not a key", keyring.keys[0]!.publicKeyArmored]) {
            await assert.rejects(
                loadSigningKey({ privateKey }),
                (err: Error & { argument?: string }) =>
                    hasCode(err, "ERR_INVALID_ARGUMENT") &&
                    err.argument === "signing.privateKey" &&
                    err.message.startsWith("signing.privateKey: "),
                `privateKey ${JSON.stringify(privateKey.slice(0, 30))}`,
            );
        }
    });
});
