/**
 * The engines' entry point (`pulumi-airgap/engine`): the named steps the dynamic providers call,
 * for a benchmark, a test or a tool that runs them without Pulumi. Plain TypeScript: no Pulumi
 * types, no state. Everything else under provider/ is internal.
 */

// APT: resolve the lock (program time), sync (fetch → verify → download → publish), drift, destroy.
export {
    type AptLock,
    type AptMirrorSpec,
    type AptMirrorState,
    type AptSourceSpec,
    fetchUpstream,
    readMirror,
    removeMirror,
    resolveLock,
    resolveProgramLock,
    syncMirror,
} from "./apt/mirror";
export { loadMiniMirrorSources, parseMiniMirrorYaml } from "./apt/minimirror";
export { systemDebianArchive } from "./apt/system";
// Errors: test them by code, never by class.
export { AirgapError, type AirgapErrorCode, hasCode, isAirgapError, type Problem } from "./errors";
// Host configuration: render the files, apply them with backups, read them back.
export { applyFiles, applyHost, readFiles, removeFiles } from "./host/apply";
export { SshTransport } from "./host/ssh";
export { openTransport } from "./host/target";
export { type HostTransport, LocalTransport } from "./host/transport";
export { renderHostFiles } from "./host/render";
export type { HostMirrorSpec } from "./host/types";
// Images: resolve the lock, copy, drift, destroy, and the host configuration for a registry.
export {
    hostConfigFor,
    type ImageLock,
    type ImageMirrorSpec,
    type ImageMirrorState,
    readImages,
    removeImages,
    resolveImageLock,
    syncImages,
} from "./oci/mirror";
