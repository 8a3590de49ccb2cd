export * from "./aptMirror";
export * from "./hostMirrorConfig";
export { loadMiniMirrorSources, type MiniMirrorSource, parseMiniMirrorYaml } from "../provider/apt/minimirror";
export * from "./imageMirror";
export * from "./mirrorVm";
export {
    loadImageList,
    loadImageSetConfiguration,
    loadMicroShiftRelease,
    parseImageList,
    parseImageSetConfiguration,
    parseMicroShiftRelease,
} from "../provider/oci/loaders";
export * from "./components/driveTrain";
export * from "./components/miniMirror";
export * from "./components/microshiftAirgap";
