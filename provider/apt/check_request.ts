/** checkRequest: the components and architectures asked for exist in the verified Release. */

import { invalidArgument } from "../errors";
import type { Release } from "./release";
import type { FetchedRelease } from "./fetch_release";

export interface CheckedRequest {
    readonly components: readonly string[];
    readonly architectures: readonly string[];
}

/**
 * True when the Release offers `component` under a path prefix: Debian's security archive lists
 * `updates/main` in `Components` and its files under `main/`, and sources.list says `main`.
 */
export function offeredUnderPrefix(offered: readonly string[], component: string): boolean {
    return offered.some((o) => o.endsWith(`/${component}`));
}

/**
 * Checks that every component and architecture asked for is offered by the Release, and fills
 * in defaults: all components, and all architectures but `all` (whose packages come with every
 * architecture anyway). Throws `ERR_INVALID_ARGUMENT` naming the argument and listing what the
 * Release offers.
 */
export function checkRequest(
    release: Release | FetchedRelease,
    components?: readonly string[],
    architectures?: readonly string[],
): CheckedRequest {
    const fetched = "release" in release ? release : undefined;
    const rel = fetched?.release ?? (release as Release);
    const where = fetched === undefined ? "the Release" : `${fetched.suiteUrl}`;
    const pick = (
        argument: string,
        asked: readonly string[] | undefined,
        offered: readonly string[],
        fallback: string[],
    ) => {
        if (asked === undefined) {
            if (fallback.length === 0) {
                throw invalidArgument(argument, `${where} lists none; name them explicitly`);
            }
            return fallback;
        }
        if (asked.length === 0) {
            throw invalidArgument(
                argument,
                `must not be empty (leave it out to take all that ${where} offers: ${offered.join(", ")})`,
            );
        }
        const out: string[] = [];
        asked.forEach((name, i) => {
            if (!offered.includes(name) && !(argument === "components" && offeredUnderPrefix(offered, name))) {
                const offers = offered.length === 0 ? "nothing" : offered.join(", ");
                throw invalidArgument(
                    `${argument}[${i}]`,
                    `${JSON.stringify(name)} is not offered by ${where}; it offers ${offers}`,
                );
            }
            if (!out.includes(name)) {
                out.push(name);
            }
        });
        return out;
    };
    return {
        components: pick("components", components, rel.components, [...rel.components]),
        architectures: pick(
            "architectures",
            architectures,
            rel.architectures,
            rel.architectures.filter((a) => a !== "all"),
        ),
    };
}
