/**
 * `npm run main [up|preview|refresh|destroy]`: runs the repository's default stack (Pulumi.yaml)
 * with the real Pulumi CLI on a local file backend under .pulumi-state/ and passphrase secrets.
 * The passphrase is PULUMI_CONFIG_PASSPHRASE, or a fixed local default for this demo stack.
 */
import * as path from "node:path";
import { openLocalStack, packageRoot } from "./stack";

async function main(op: string): Promise<void> {
    const stack = await openLocalStack({
        workDir: packageRoot,
        existingProject: true,
        projectName: "pulumi-airgap",
        stackName: process.env.PULUMI_STACK ?? "dev",
        stateDir: path.join(packageRoot, ".pulumi-state"),
        passphrase: process.env.PULUMI_CONFIG_PASSPHRASE ?? "pulumi-airgap-local",
        program: async () => require(path.join(packageRoot, "lib", "index.js"))(),
    });
    const onOutput = (s: string) => process.stdout.write(s);
    switch (op) {
        case "up":
            await stack.up({ onOutput, diff: true });
            break;
        case "preview":
            await stack.preview({ onOutput, diff: true, expectNoChanges: process.env.EXPECT_NO_CHANGES === "1" });
            break;
        case "refresh":
            await stack.refresh({ onOutput });
            break;
        case "destroy":
            await stack.destroy({ onOutput });
            break;
        default:
            throw new Error(`unknown operation "${op}": use up, preview, refresh or destroy`);
    }
}

main(process.argv[2] ?? "up").catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
});
