export * from "./aptMirror";
export * from "./hostMirrorConfig";
export { loadMiniMirrorSources, type MiniMirrorSource, parseMiniMirrorYaml } from "../provider/apt/minimirror";
