/** Directories compared as places, not as strings. */
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `dir` spelled one way: absolute, without "." / ".." / doubled or trailing slashes, symbolic
 * links resolved (when it exists). Two spellings of one place must never look like two places:
 * Pulumi creates a replacement before deleting the old resource, and the old one's delete would
 * then remove what the new one just wrote.
 */
export function placeOf(dir: string): string {
    const resolved = path.resolve(dir);
    try {
        return fs.realpathSync(resolved);
    } catch {
        return resolved; // missing: validation reports it
    }
}
