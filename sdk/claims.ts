/**
 * Places the resources of one program write to, claimed while the program runs: a place claimed
 * twice is refused before any step, because the two resources would overwrite each other and
 * the destroy of one would remove what the other still serves.
 */
import { ProgramInputError } from "./lock";

/** Place key → the resource that claimed it, for this program run. */
const claims = new Map<string, string>();

/**
 * Claims `places` for `resource` (`Type "name"`); throws a ProgramInputError naming both
 * resources, the place and `argument` when another resource of the program claimed one of them.
 */
export function claimPlaces(resource: string, argument: string, places: readonly string[], advice: string): void {
    for (const place of places) {
        const owner = claims.get(place);
        if (owner !== undefined && owner !== resource) {
            throw new ProgramInputError(`${resource}: ${argument}: ${place} is also written by ${owner}; ${advice}`, {
                code: "ERR_CONFLICT",
                argument,
            });
        }
    }
    for (const place of places) {
        claims.set(place, resource);
    }
}
