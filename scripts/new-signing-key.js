// Prints a new armored OpenPGP private key (Ed25519) for signing the default stack's mirror, or,
// when the default stack's data holds the key an earlier version kept as a file, that key: the
// published mirror then keeps its key. scripts/main.sh stores it as a stack secret.
const fs = require("node:fs");
const path = require("node:path");
const openpgp = require("openpgp");

async function main() {
    const legacy = process.argv[2] && path.join(process.argv[2], "keys", "mirror-signing-key.asc");
    if (legacy && fs.existsSync(legacy)) {
        process.stdout.write(fs.readFileSync(legacy, "utf8"));
        return;
    }
    const { privateKey } = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ name: "pulumi-airgap site mirror", email: "mirror@site.invalid" }],
        format: "armored",
    });
    process.stdout.write(privateKey);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
