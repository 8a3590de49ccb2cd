/**
 * The first steps of a mirror update, each with its I/O passed in:
 *
 *     fetchRelease         InRelease (or Release + Release.gpg), verified with the given keys
 *                          (fetch_release.ts)
 *     checkRequest         the components and architectures asked for exist in that Release
 *                          (check_request.ts)
 *     fetchPackageIndexes  Packages indexes, checked against the signed hashes, parsed
 *                          (fetch_indexes.ts)
 *
 * Nothing read from upstream is used before it is verified: indexes are checked (size and
 * SHA256 from the signed Release) before they are decompressed or parsed, and the Release
 * itself is parsed only from the verified text.
 */

export * from "./check_request";
export * from "./fetch_indexes";
export * from "./fetch_release";
