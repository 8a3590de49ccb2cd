import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AirgapError } from "../errors";

/**
 * `<tmpdir>/<name>-<uid>`, made private to this user (mode 0700). An existing directory of that
 * name that another user owns, or that others can write to, is refused rather than used: it
 * could hold files planted for us to trust.
 */
export function privateTempDir(name: string): string {
    const uid = process.getuid?.();
    const dir = path.join(os.tmpdir(), `${name}-${uid ?? os.userInfo().username}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const info = fs.lstatSync(dir);
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
        throw new AirgapError(
            "ERR_IO",
            `${dir} is not a private directory of this user (owner ${info.uid}, mode ${(info.mode & 0o7777).toString(8)}): remove it`,
        );
    }
    return dir;
}
