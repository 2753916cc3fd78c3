/**
 * Two sites with no multicast path between them, and a broker between:
 * three network namespaces, site A (`mcast<pid>r97`), site B
 * (`mcast<pid>r98`) and the broker (`mcast<pid>r99`), each site joined to the broker by one
 * veth pair on its own /25 of TEST-NET-2. The broker does not forward, so
 * the sites reach the broker's address and nothing else of each other; each
 * site's multicast stays on its own loopback. Disposing the result deletes
 * the namespaces (and with them every link).
 *
 * @module
 */

import { ip } from "../_netns.ts";

/** The network of {@linkcode createSites}. */
export interface Sites extends AsyncDisposable {
  /** Site A's namespace: the sender and the near bridge. */
  a: string;
  /** Site B's namespace: the far bridge and the receivers. */
  b: string;
  /** The broker's namespace. */
  broker: string;
  /** The broker's address, reachable from both sites. */
  brokerAddress: string;
  /** Every namespace created. */
  namespaces: string[];
}

/**
 * Creates the sites. Namespaces are named as `_netns.ts` names its own
 * (roles it never gives), so that a killed run's leftovers are removed by
 * the next lab.
 *
 * @returns The network; dispose it (`await using`).
 */
export async function createSites(): Promise<Sites> {
  const prefix = `mcast${Deno.pid}`;
  const a = `${prefix}r97`;
  const b = `${prefix}r98`;
  const broker = `${prefix}r99`;
  const created: string[] = [];
  const removeAll = async () => {
    const failures: string[] = [];
    for (const name of created) {
      await ip(`netns delete ${name}`).catch((error) =>
        failures.push(String(error))
      );
    }
    if (failures.length > 0) throw new Error(failures.join("; "));
  };
  try {
    for (const name of [a, b, broker]) {
      await ip(`netns add ${name}`);
      created.push(name);
      await ip(`-n ${name} link set lo up`);
    }
    // Site A: 198.51.100.1/25, the broker's side .126.
    await ip(
      `link add veth-s netns ${a} type veth peer name port-s netns ${broker}`,
    );
    await ip(`-n ${a} addr add 198.51.100.1/25 dev veth-s`);
    await ip(`-n ${broker} addr add 198.51.100.126/25 dev port-s`);
    // Site B: 198.51.100.129/25, the broker's side .254.
    await ip(
      `link add veth-r1 netns ${b} type veth peer name port-r1 netns ${broker}`,
    );
    await ip(`-n ${b} addr add 198.51.100.129/25 dev veth-r1`);
    await ip(`-n ${broker} addr add 198.51.100.254/25 dev port-r1`);
    for (
      const [ns, link] of [[a, "veth-s"], [b, "veth-r1"], [broker, "port-s"], [
        broker,
        "port-r1",
      ]]
    ) {
      await ip(`-n ${ns} link set ${link} up`);
    }
    // B reaches the broker's .126 through .254 (the broker holds both).
    await ip(`-n ${b} route add 198.51.100.126/32 via 198.51.100.254`);
    return {
      a,
      b,
      broker,
      brokerAddress: "198.51.100.126",
      namespaces: [...created],
      [Symbol.asyncDispose]: removeAll,
    };
  } catch (error) {
    await removeAll().catch(() => {});
    throw error;
  }
}
