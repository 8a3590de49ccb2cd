import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hasCode } from "../../../provider/errors";
import { loadPublicKeys, type VerificationKeys, verifyClearsigned, verifyDetached } from "../../../provider/pgp/verify";
import { type GpgKeyring, makeGpgKeyring, type SigningKind } from "../../harness/fixtures/aptrepo";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const RELEASE = [
    "Origin: verify-test",
    "Label: verify-test",
    "Suite: stable",
    "Description: a line with trailing blanks   ",
    "- a line that starts with a dash",
    "SHA256:",
    " 0000000000000000000000000000000000000000000000000000000000000000              0 main/binary-amd64/Packages",
    "",
].join("\n");

interface Signed {
    clearsigned: string;
    detachedArmored: string;
    detachedBinary: Buffer;
}

async function sign(keyring: GpgKeyring, text: string, fingerprints: readonly string[]): Promise<Signed> {
    const dir = await makeTempDir("sign");
    const input = join(dir, "Release");
    await writeFile(input, text);
    const users = fingerprints.flatMap((f) => ["--local-user", `${f}!`]);
    const base = ["--yes", "--digest-algo", "SHA512", ...users];
    await keyring.gpg([...base, "--clearsign", "--output", join(dir, "InRelease"), input]);
    await keyring.gpg([...base, "--armor", "--detach-sign", "--output", join(dir, "Release.asc"), input]);
    await keyring.gpg([...base, "--detach-sign", "--output", join(dir, "Release.gpg"), input]);
    return {
        clearsigned: await readFile(join(dir, "InRelease"), "utf8"),
        detachedArmored: await readFile(join(dir, "Release.asc"), "utf8"),
        detachedBinary: await readFile(join(dir, "Release.gpg")),
    };
}

async function rejects(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
    await assert.rejects(promise, (err: Error) => {
        assert.ok(
            hasCode(err, code as never),
            `expected ${code}, got ${(err as { code?: string }).code}: ${err.message}`,
        );
        assert.match(err.message, pattern);
        return true;
    });
}

describe("pgp verify: InRelease and Release.gpg", function () {
    this.timeout(120_000);

    let keyring: GpgKeyring;
    let stranger: GpgKeyring;

    before(async () => {
        keyring = await makeGpgKeyring(["rsa", "ed25519"]);
        stranger = await makeGpgKeyring(["ed25519"]);
    });

    after(async () => {
        await keyring?.close();
        await stranger?.close();
        await cleanupAll();
    });

    for (const kind of ["rsa", "ed25519"] as const satisfies readonly SigningKind[]) {
        describe(`signed with ${kind}`, () => {
            let signed: Signed;
            let keys: VerificationKeys;
            let fingerprint: string;

            before(async () => {
                const key = keyring.keys.find((k) => k.kind === kind)!;
                fingerprint = key.fingerprint;
                signed = await sign(keyring, RELEASE, [fingerprint]);
                keys = await loadPublicKeys(key.publicKeyArmored);
            });

            it("verifies the clearsigned form and returns the signed text and signer", async () => {
                const result = await verifyClearsigned(signed.clearsigned, keys);
                // RFC 4880 §7.1: the line end before the signature is not part of the text.
                // and trailing blanks are not covered by a cleartext signature, so they are dropped.
                assert.equal(result.payload, RELEASE.replace(/\n$/, "").replace(/ +$/gm, ""));
                assert.equal(result.fingerprint, fingerprint);
                assert.deepEqual(result.signedBy, [result.keyId]);
            });

            it("verifies armored and binary detached signatures", async () => {
                for (const signature of [signed.detachedArmored, signed.detachedBinary]) {
                    const result = await verifyDetached(RELEASE, signature, keys);
                    assert.equal(result.payload, RELEASE);
                    assert.equal(result.fingerprint, fingerprint);
                }
            });

            it("rejects a key that did not sign, naming signer and given keys", async () => {
                const other = await loadPublicKeys(stranger.publicKeysArmored);
                const pattern = new RegExp(
                    `signed by key ID [0-9A-F]{16}; given keys ${stranger.keys[0]!.fingerprint}`,
                );
                await rejects(
                    verifyClearsigned(signed.clearsigned, other, { what: "InRelease from X" }),
                    "ERR_VERIFICATION",
                    pattern,
                );
                await rejects(verifyDetached(RELEASE, signed.detachedArmored, other), "ERR_VERIFICATION", pattern);
            });

            it("rejects altered text", async () => {
                const altered = signed.clearsigned.replace("Suite: stable", "Suite: stab1e");
                assert.notEqual(altered, signed.clearsigned);
                await rejects(verifyClearsigned(altered, keys), "ERR_VERIFICATION", /does not verify/);
                await rejects(
                    verifyDetached(RELEASE.replace("stable", "stab1e"), signed.detachedBinary, keys),
                    "ERR_VERIFICATION",
                    /does not verify/,
                );
            });

            it("rejects text outside the signed part", async () => {
                await rejects(
                    verifyClearsigned(`${signed.clearsigned}Origin: injected\n`, keys),
                    "ERR_VERIFICATION",
                    /data after the signature/,
                );
                await rejects(
                    verifyClearsigned(`Origin: injected\n${signed.clearsigned}`, keys),
                    "ERR_VERIFICATION",
                    /not a clearsigned message/,
                );
            });
        });
    }

    it("accepts a file signed by both keys with either key alone", async () => {
        const signed = await sign(
            keyring,
            RELEASE,
            keyring.keys.map((k) => k.fingerprint),
        );
        for (const key of keyring.keys) {
            const keys = await loadPublicKeys(key.publicKeyArmored);
            const clear = await verifyClearsigned(signed.clearsigned, keys);
            assert.equal(clear.fingerprint, key.fingerprint);
            assert.equal(clear.signedBy.length, 2);
            const detached = await verifyDetached(RELEASE, signed.detachedArmored, keys);
            assert.equal(detached.fingerprint, key.fingerprint);
        }
    });

    it("rejects unsigned text as an InRelease", async () => {
        const keys = await loadPublicKeys(keyring.publicKeysArmored);
        await rejects(verifyClearsigned(RELEASE, keys), "ERR_VERIFICATION", /^InRelease: is not a clearsigned message/);
        await rejects(verifyDetached(RELEASE, "", keys), "ERR_VERIFICATION", /detached signature cannot be read/);
    });

    describe("loadPublicKeys", () => {
        it("reads several keys from one armored block, separate blocks, .asc and binary .gpg files", async () => {
            const all = keyring.keys.map((k) => k.fingerprint);
            assert.deepEqual((await loadPublicKeys(keyring.publicKeysArmored)).fingerprints, all);
            const concatenated = keyring.keys.map((k) => k.publicKeyArmored).join("\n");
            assert.deepEqual((await loadPublicKeys({ armored: concatenated })).fingerprints, all);
            assert.deepEqual((await loadPublicKeys({ file: keyring.publicKeyPath })).fingerprints, all);
            const dir = await makeTempDir("keys");
            const binary = join(dir, "keys.gpg");
            await keyring.gpg(["--yes", "--output", binary, "--export", ...all]);
            assert.notEqual((await readFile(binary)).subarray(0, 5).toString(), "-----");
            const fromBinary = await loadPublicKeys([{ file: binary }, stranger.publicKeysArmored]);
            assert.deepEqual(fromBinary.fingerprints, [...all, stranger.keys[0]!.fingerprint]);
        });

        it("keeps only pinned fingerprints and fails when one is missing", async () => {
            const ed = keyring.keys.find((k) => k.kind === "ed25519")!;
            const pinned = await loadPublicKeys(keyring.publicKeysArmored, {
                fingerprints: [ed.fingerprint.toLowerCase()],
            });
            assert.deepEqual(pinned.fingerprints, [ed.fingerprint]);
            await rejects(
                loadPublicKeys(keyring.publicKeysArmored, { fingerprints: [stranger.keys[0]!.fingerprint] }),
                "ERR_INVALID_ARGUMENT",
                /^fingerprints: no key with fingerprint/,
            );
        });

        it("refuses private keys, garbage and missing files, naming the source", async () => {
            await rejects(
                loadPublicKeys([keyring.publicKeysArmored, keyring.keys[0]!.privateKeyArmored]),
                "ERR_INVALID_ARGUMENT",
                /^keys\[1\]: is a private key/,
            );
            await rejects(
                loadPublicKeys("not a key"),
                "ERR_INVALID_ARGUMENT",
                /^keys\[0\]: is not an OpenPGP public key/,
            );
            await rejects(
                loadPublicKeys({ file: "/nonexistent/key.asc" }),
                "ERR_INVALID_ARGUMENT",
                /^keys\[0\] \(file \/nonexistent\/key\.asc\): cannot be read/,
            );
            await rejects(loadPublicKeys([]), "ERR_INVALID_ARGUMENT", /^keys: no public key given/);
        });
    });
});
