/**
 * `pulumi-language-nodejs`, for machines where the official Node.js language host cannot be
 * installed. The Pulumi CLI starts it like any language plugin:
 *
 *   pulumi-language-nodejs [-tracing <endpoint>] [-runtime nodejs] [-version] [<engine address>]
 *
 * It prints the port of its LanguageRuntime gRPC service on the first line of stdout and serves
 * until the CLI goes away (it exits when its parent does) or sends SIGINT/SIGTERM.
 */
import { parseHostArgs } from "./args";
import { serveLanguageRuntime } from "./server";

function sdkVersion(): string {
    return (require("@pulumi/pulumi/package.json") as { version: string }).version;
}

async function main(): Promise<void> {
    const args = parseHostArgs(process.argv.slice(2));
    if (args.showVersion) {
        process.stdout.write(`${sdkVersion()}\n`);
        return;
    }
    if (args.runtime !== "nodejs") {
        throw new Error(`unsupported runtime: ${args.runtime}`);
    }
    const { port, server } = await serveLanguageRuntime({
        engineAddress: args.engineAddress,
        tracing: args.tracing,
        version: sdkVersion(),
        log: (m) => process.stderr.write(`pulumi-language-nodejs: ${m}\n`),
    });
    process.stdout.write(`${port}\n`);

    const stop = () => {
        server.forceShutdown();
        process.exit(0);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    // The CLI kills its plugins when it is done; if it dies first, do not outlive it.
    const parent = process.ppid;
    setInterval(() => {
        if (process.ppid !== parent) {
            stop();
        }
    }, 1000).unref();
}

main().catch((err: Error) => {
    process.stderr.write(`pulumi-language-nodejs: ${err.message}\n`);
    process.exit(1);
});
