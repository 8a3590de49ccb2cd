export * from "./hostMirrorConfig";
