/**
 * The native path's received TTLs (`receiveTtl`, through `IP_RECVTTL` and
 * `recvmmsg` control messages) and its fixed sender port, on loopback.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Datagram,
  type DatagramEndpoint,
  nativeUnavailable,
  openNativeGroupSocket,
  openNativeSenderSocket,
  parseGroup,
  type ResolvedInterface,
} from "../../lib/mod.ts";
import { testPort } from "../_tools.ts";
import { bounded } from "../_wait.ts";

const LO: ResolvedInterface = {
  family: 4,
  address: "127.0.0.1",
  name: "lo",
  index: 0,
};

async function one(endpoint: DatagramEndpoint): Promise<Datagram | null> {
  return await bounded(5000, endpoint.receive(), () => endpoint.close());
}

Deno.test({
  name:
    "native sockets report each datagram's TTL when asked, unicast and multicast",
  ignore: nativeUnavailable() !== undefined,
  fn: async () => {
    const port = testPort();
    const groupPort = testPort();
    const group = parseGroup("239.78.12.1");
    const a = await openNativeSenderSocket(LO, {
      ttl: 3,
      port,
      receiveTtl: true,
    });
    const b = await openNativeSenderSocket(LO, { ttl: 5 });
    const g = await openNativeGroupSocket(group, LO, {
      port: groupPort,
      receiveTtl: true,
    });
    const plain = await openNativeGroupSocket(group, LO, { port: groupPort });
    try {
      assert.deepEqual(a.local, { address: "127.0.0.1", port });
      const defaultTtl = Number(
        (await Deno.readTextFile("/proc/sys/net/ipv4/ip_default_ttl")).trim(),
      );
      await b.send(new TextEncoder().encode("u"), a.local);
      await b.send(new TextEncoder().encode("m"), {
        address: group.address,
        port: groupPort,
      });
      await b.flush();
      const unicast = await one(a);
      assert.equal(new TextDecoder().decode(unicast!.payload), "u");
      assert.equal(unicast!.ttl, defaultTtl);
      const multicast = await one(g);
      assert.equal(new TextDecoder().decode(multicast!.payload), "m");
      assert.equal(multicast!.ttl, 5);
      const unasked = await one(plain);
      assert.equal(unasked!.ttl, undefined);
      assert.equal("ttl" in unasked!, false);
    } finally {
      for (const endpoint of [a, b, g, plain]) endpoint.close();
    }
  },
});
