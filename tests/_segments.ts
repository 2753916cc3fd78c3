/**
 * Two network segments and a host between them, for the bridge's tests:
 * host A (`mcast<pid>ga`) on segment A, host B (`mcast<pid>gb`) on segment
 * B, and the bridge host (`mcast<pid>gm`) with a veth link into each. There
 * is no route between A's and B's segments: each host knows only its
 * connected /25 of TEST-NET-2, and the bridge host does not forward (a new
 * namespace's `ip_forward` is 0). Everything lives in namespaces the
 * builder creates; disposing the result deletes them, and a later run
 * deletes what a killed run left behind (names of this module's pattern
 * whose process is gone).
 *
 * | host | link | address |
 * |---|---|---|
 * | A | `veth-a` | 198.51.100.1/25 |
 * | bridge | `veth-a` | 198.51.100.2/25 |
 * | bridge | `veth-b` | 198.51.100.129/25 |
 * | B | `veth-b` | 198.51.100.130/25 |
 *
 * @module
 */

import { ip, killInside, removeStaleNamespaces } from "./_netns.ts";

/** What a namespace name of this module looks like. */
const NAME_PATTERN = /^mcast([0-9]+)g[amb]$/;

/** One host of the two segments. */
export interface SegmentHost {
  /** Namespace name, for `ip netns exec`. */
  ns: string;
  /** Its link(s) and their IPv4 addresses. */
  links: Record<string, string>;
}

/** The network; disposing it deletes every namespace. */
export interface Segments extends AsyncDisposable {
  /** Host A, on segment A. */
  a: SegmentHost;
  /** The bridge host, on both. */
  bridge: SegmentHost;
  /** Host B, on segment B. */
  b: SegmentHost;
  /** Every namespace created. */
  namespaces: string[];
}

async function deleteAll(namespaces: string[]): Promise<void> {
  for (const name of namespaces) {
    // Tools a failed test left running inside go first.
    await killInside(name);
    await ip(`netns delete ${name}`);
  }
}

/** Polls until a link has a usable IPv6 link-local address (5 s at most). */
async function waitForLinkLocal(ns: string, link: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [info] = JSON.parse(
      await ip(`-n ${ns} -j addr show dev ${link}`),
    ) as {
      addr_info: { family: string; scope: string; tentative?: boolean }[];
    }[];
    if (
      info?.addr_info.some((a) =>
        a.family === "inet6" && a.scope === "link" && !a.tentative
      )
    ) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${link} in ${ns} got no usable link-local address`);
    }
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

/**
 * Creates the two segments and the bridge host (see the module's table).
 *
 * @returns The network; `await using` deletes it.
 */
export async function createSegments(): Promise<Segments> {
  await removeStaleNamespaces(NAME_PATTERN);
  const prefix = `mcast${Deno.pid}`;
  const a = `${prefix}ga`;
  const bridge = `${prefix}gm`;
  const b = `${prefix}gb`;
  const created: string[] = [];
  try {
    for (const name of [a, bridge, b]) {
      await ip(`netns add ${name}`);
      created.push(name);
      // IPv6 link-local addresses usable at once (no duplicate detection).
      await ip(
        `netns exec ${name} sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0`,
      );
      await ip(`-n ${name} link set lo up`);
    }
    await ip(
      `link add veth-a netns ${a} type veth peer name veth-a netns ${bridge}`,
    );
    await ip(
      `link add veth-b netns ${b} type veth peer name veth-b netns ${bridge}`,
    );
    const addresses: [string, string, string][] = [
      [a, "veth-a", "198.51.100.1/25"],
      [bridge, "veth-a", "198.51.100.2/25"],
      [bridge, "veth-b", "198.51.100.129/25"],
      [b, "veth-b", "198.51.100.130/25"],
    ];
    for (const [ns, link, address] of addresses) {
      await ip(`-n ${ns} addr add ${address} dev ${link}`);
      await ip(`-n ${ns} link set ${link} up`);
    }
    for (const [ns, link] of addresses) await waitForLinkLocal(ns, link);
    return {
      a: { ns: a, links: { "veth-a": "198.51.100.1" } },
      bridge: {
        ns: bridge,
        links: { "veth-a": "198.51.100.2", "veth-b": "198.51.100.129" },
      },
      b: { ns: b, links: { "veth-b": "198.51.100.130" } },
      namespaces: [...created],
      async [Symbol.asyncDispose]() {
        await deleteAll(created);
      },
    };
  } catch (error) {
    await deleteAll(created).catch(() => {});
    throw error;
  }
}
