import type * as TarStream from "tar-stream";

let loaded: typeof TarStream | undefined;

/**
 * tar-stream, loaded on first use: a registry-to-registry sync never reads or writes an archive,
 * and a no-op sync is mostly the provider process starting.
 */
export function tarStream(): typeof TarStream {
    loaded ??= require("tar-stream") as typeof TarStream;
    return loaded;
}
