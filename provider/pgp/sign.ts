/**
 * Signing the `Release` of a published APT repository, and checking our own signatures again.
 *
 * A published suite carries the same `Release` text twice signed: `InRelease` (a cleartext
 * signed message, RFC 4880 §7) and `Release.gpg` (a detached armored signature over the exact
 * bytes of `Release`). Current apt reads `InRelease`; older clients and some proxies still fetch
 * `Release` + `Release.gpg`, so both are written.
 *
 * Keys are OpenPGP private keys, RSA or Ed25519, armored as `gpg --armor --export-secret-keys`
 * writes them. Several keys in one armored block all sign (a key rotation: clients trusting
 * either key accept the repository). Verifying upstream repositories is not done here; this
 * module checks only what the publisher itself signed (`checkReleaseSignatures`, for drift).
 */

import type * as openpgpTypes from "openpgp";
import { openpgp as loadOpenpgp } from "./lazy";
import { AirgapError, invalidArgument } from "../errors";

/** The signing key of a publish, as the user gives it. */
export interface SigningOptions {
    /** One or more armored OpenPGP private keys (RSA or Ed25519). Every key in the block signs. */
    readonly privateKey: string;
    /** The passphrase, when the key is encrypted. Ignored for a key that is not. */
    readonly passphrase?: string;
}

/**
 * Keys ready to sign. Holds decrypted secret keys: keep it for the duration of one publish,
 * never store it or pass it into serialized provider state.
 */
export interface ReleaseSigner {
    /** Primary key fingerprints, upper-case hex, in the order of the armored block. */
    readonly fingerprints: readonly string[];
    /** The public part of every key, armored: what APT clients put in `Signed-By`. */
    readonly publicKeyArmored: string;
    /**
     * Signs `releaseText` (the exact bytes written as `Release`) both ways, every key signing.
     * `date` is the signature time (defaults to now). MUST throw rather than return a partial
     * result.
     */
    sign(releaseText: string, date?: Date): Promise<SignedRelease>;
}

/** The two signed forms of one `Release` text. */
export interface SignedRelease {
    /** The clearsigned `InRelease` text. */
    readonly inRelease: string;
    /** The armored detached signature written as `Release.gpg`. */
    readonly releaseGpg: string;
}

const signConfig = (openpgp: typeof openpgpTypes): openpgpTypes.PartialConfig => ({
    // apt refuses SHA1 signatures (weak digest); SHA512 is what Debian's archive uses.
    preferredHashAlgorithm: openpgp.enums.hash.sha512,
});

function messageOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

/**
 * Reads and, when needed, decrypts the signing keys. Fails before anything is signed:
 * `ERR_INVALID_ARGUMENT` naming `<argument>.privateKey` when the text is not an armored private
 * key or a key cannot sign (expired, revoked, no signing-capable key), and
 * `<argument>.passphrase` when an encrypted key has no passphrase or the passphrase is wrong.
 */
export async function loadSigningKey(options: SigningOptions, argument = "signing"): Promise<ReleaseSigner> {
    const openpgp = await loadOpenpgp();
    const keyArgument = `${argument}.privateKey`;
    const passphraseArgument = `${argument}.passphrase`;
    const armored = options.privateKey;
    if (typeof armored !== "string" || armored.trim() === "") {
        throw invalidArgument(keyArgument, "is empty: give an armored private key (gpg --armor --export-secret-keys)");
    }
    if (armored.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
        throw invalidArgument(
            keyArgument,
            "is a public key: give the private key (gpg --armor --export-secret-keys); the public part is derived from it",
        );
    }
    const keys: openpgpTypes.PrivateKey[] = [];
    try {
        for (const block of armoredBlocks(armored, "PRIVATE KEY BLOCK")) {
            keys.push(...(await openpgp.readPrivateKeys({ armoredKeys: block })));
        }
    } catch (cause) {
        throw invalidArgument(
            keyArgument,
            `is not an armored OpenPGP private key (gpg --armor --export-secret-keys): ${messageOf(cause)}`,
            cause,
        );
    }
    if (keys.length === 0) {
        throw invalidArgument(keyArgument, "holds no private key");
    }
    const ready: openpgpTypes.PrivateKey[] = [];
    for (const key of keys) {
        const fingerprint = key.getFingerprint().toUpperCase();
        let usable = key;
        if (!key.isDecrypted()) {
            if (options.passphrase === undefined || options.passphrase === "") {
                throw invalidArgument(passphraseArgument, "the key is encrypted, give its passphrase");
            }
            try {
                usable = await openpgp.decryptKey({ privateKey: key, passphrase: options.passphrase });
            } catch (cause) {
                throw invalidArgument(
                    passphraseArgument,
                    `does not decrypt key ${fingerprint}: ${messageOf(cause)}`,
                    cause,
                );
            }
        }
        try {
            await usable.getSigningKey(undefined, new Date(), undefined, { ...openpgp.config, ...signConfig(openpgp) });
        } catch (cause) {
            throw invalidArgument(keyArgument, `key ${fingerprint} cannot sign: ${messageOf(cause)}`, cause);
        }
        ready.push(usable);
    }
    const fingerprints = ready.map((key) => key.getFingerprint().toUpperCase());
    return {
        fingerprints,
        publicKeyArmored: joinArmoredKeys(ready.map((key) => key.toPublic().armor())),
        sign: (releaseText, date) => signWithKeys(ready, fingerprints, releaseText, date),
    };
}

/**
 * The armored blocks of one kind in `text`, in order; the whole text when it has no BEGIN line
 * (so the parser reports what is wrong with it). openpgp reads only the first block of a text,
 * and a key rotation gives several exported keys one after the other.
 */
function armoredBlocks(text: string, kind: string): string[] {
    const begin = `-----BEGIN PGP ${kind}-----`;
    const end = `-----END PGP ${kind}-----`;
    const blocks: string[] = [];
    let from = text.indexOf(begin);
    while (from >= 0) {
        const stop = text.indexOf(end, from);
        if (stop < 0) {
            blocks.push(text.slice(from));
            break;
        }
        blocks.push(`${text.slice(from, stop + end.length)}\n`);
        from = text.indexOf(begin, stop);
    }
    return blocks.length === 0 ? [text] : blocks;
}

function joinArmoredKeys(blocks: readonly string[]): string {
    return blocks.map((block) => (block.endsWith("\n") ? block : `${block}\n`)).join("");
}

/**
 * The clearsigned payload is the text without its final line end: in a cleartext message the
 * line break before the signature belongs to the armor (RFC 4880 §7.1), as with
 * `gpg --clearsign`, so `InRelease` reads back as the same stanza.
 */
async function signWithKeys(
    keys: readonly openpgpTypes.PrivateKey[],
    fingerprints: readonly string[],
    releaseText: string,
    date: Date | undefined,
): Promise<SignedRelease> {
    const openpgp = await loadOpenpgp();
    if (releaseText.includes("\r")) {
        throw invalidArgument("releaseText", "contains a carriage return; Release files use \\n line ends");
    }
    const payload = releaseText.endsWith("\n") ? releaseText.slice(0, -1) : releaseText;
    try {
        const inRelease = await openpgp.sign({
            message: await openpgp.createCleartextMessage({ text: payload }),
            signingKeys: [...keys],
            date,
            config: signConfig(openpgp),
        });
        const releaseGpg = await openpgp.sign({
            // Binary, not text mode: the signature covers the bytes a client downloads as Release.
            message: await openpgp.createMessage({ binary: Buffer.from(releaseText, "utf8") }),
            signingKeys: [...keys],
            detached: true,
            format: "armored",
            date,
            config: signConfig(openpgp),
        });
        return { inRelease: ensureFinalNewline(inRelease), releaseGpg: ensureFinalNewline(releaseGpg) };
    } catch (cause) {
        throw new AirgapError(
            "ERR_INVALID_ARGUMENT",
            `signing: signing Release with ${fingerprints.join(", ")} failed`,
            {
                argument: "signing",
                cause,
            },
        );
    }
}

function ensureFinalNewline(text: string): string {
    return text.endsWith("\n") ? text : `${text}\n`;
}

/** What `checkReleaseSignatures` found for one signed form. */
export type SignatureState = "valid" | "invalid" | "missing";

export interface ReleaseSignatureCheck {
    readonly inRelease: SignatureState;
    readonly releaseGpg: SignatureState;
    /** The `InRelease` payload equals the `Release` text (undefined when InRelease is missing or unreadable). */
    readonly inReleaseMatchesRelease?: boolean;
    /** Why a form is invalid, one line each. */
    readonly problems: readonly string[];
}

/**
 * Checks the signatures of a published suite against the armored public key(s): `InRelease`
 * must be a valid cleartext signature whose text is `release` (less its final line end), and
 * `Release.gpg` a valid detached signature over `release`'s bytes. Pass undefined for a file
 * that is absent. Never throws for a bad signature; throws `ERR_INVALID_ARGUMENT` when the
 * public key cannot be read.
 */
export async function checkReleaseSignatures(
    publicKeyArmored: string,
    files: { release: Buffer; inRelease?: string; releaseGpg?: string },
): Promise<ReleaseSignatureCheck> {
    const openpgp = await loadOpenpgp();
    let verificationKeys: openpgpTypes.Key[];
    try {
        verificationKeys = [];
        for (const block of armoredBlocks(publicKeyArmored, "PUBLIC KEY BLOCK")) {
            verificationKeys.push(...(await openpgp.readKeys({ armoredKeys: block })));
        }
    } catch (cause) {
        throw invalidArgument("publicKey", `is not an armored OpenPGP key: ${messageOf(cause)}`, cause);
    }
    const publicKeys = verificationKeys.map((key) => (key.isPrivate() ? key.toPublic() : key));
    const problems: string[] = [];
    const firstValid = async (
        signatures: openpgpTypes.VerifyMessageResult["signatures"],
    ): Promise<string | undefined> => {
        const reasons: string[] = [];
        for (const signature of signatures) {
            try {
                await signature.verified;
                return undefined;
            } catch (err) {
                reasons.push(messageOf(err));
            }
        }
        return reasons.length === 0 ? "no signature" : reasons.join("; ");
    };

    let inRelease: SignatureState = "missing";
    let inReleaseMatchesRelease: boolean | undefined;
    if (files.inRelease !== undefined) {
        try {
            const message = await openpgp.readCleartextMessage({ cleartextMessage: files.inRelease });
            const result = await openpgp.verify({ message, verificationKeys: publicKeys });
            const failure = await firstValid(result.signatures);
            inRelease = failure === undefined ? "valid" : "invalid";
            if (failure !== undefined) {
                problems.push(`InRelease: ${failure}`);
            }
            const releaseText = files.release.toString("utf8");
            const expected = releaseText.endsWith("\n") ? releaseText.slice(0, -1) : releaseText;
            inReleaseMatchesRelease = result.data === expected;
        } catch (err) {
            inRelease = "invalid";
            problems.push(`InRelease: ${messageOf(err)}`);
        }
    }
    let releaseGpg: SignatureState = "missing";
    if (files.releaseGpg !== undefined) {
        try {
            const signature = await openpgp.readSignature({ armoredSignature: files.releaseGpg });
            const message = await openpgp.createMessage({ binary: new Uint8Array(files.release) });
            const result = await openpgp.verify({ message, signature, verificationKeys: publicKeys, format: "binary" });
            const failure = await firstValid(result.signatures);
            releaseGpg = failure === undefined ? "valid" : "invalid";
            if (failure !== undefined) {
                problems.push(`Release.gpg: ${failure}`);
            }
        } catch (err) {
            releaseGpg = "invalid";
            problems.push(`Release.gpg: ${messageOf(err)}`);
        }
    }
    return { inRelease, releaseGpg, inReleaseMatchesRelease, problems };
}
