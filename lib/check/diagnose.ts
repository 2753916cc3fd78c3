/**
 * `mcast-check`'s explanations: pure functions from what was measured
 * ({@linkcode PeerResult}s) and what the system says ({@linkcode LocalFacts},
 * counters) to one line per finding, each with a stable code.
 *
 * @module
 */

import type { Counters, LocalFacts } from "./facts.ts";
import { routeFor } from "./facts.ts";
import type { PeerResult } from "./session.ts";

/** The stable code of each finding. */
export type DiagnosisCode =
  | "no-multicast-route"
  | "no-multicast-flag"
  | "receive-buffer-capped"
  | "rp-filter"
  | "ttl-too-small"
  | "firewall"
  | "igmp-no-querier"
  | "multicast-blocked"
  | "multicast-unanswered"
  | "no-answer"
  | "hops-unknown";

/** One finding. */
export interface Diagnosis {
  /** What kind of finding. */
  code: DiagnosisCode;
  /** The interface it concerns. */
  iface: string;
  /** The peer it concerns (`address:port`), if one. */
  peer?: string;
  /** The explanation, one line. */
  line: string;
}

/** Everything the findings are decided from. */
export interface DiagnosisInput {
  /** The interface's facts. */
  facts: LocalFacts;
  /** What was measured per peer. */
  results: PeerResult[];
  /** The multicast TTL probes were sent with. */
  ttl: number;
  /** The group's address. */
  group: string;
  /** The group's port. */
  groupPort: number;
  /** The socket path: `deno` cannot read received TTLs. */
  io: "native" | "deno";
  /** The group socket's receive buffer (native path). */
  buffer?: { receive: number; requestedReceive: number; capped: boolean };
  /** How the kernel's counters grew during the check. */
  delta: Counters;
  /** Datagrams the group socket received (this instance's own included). */
  groupArrivals: number;
  /** IGMP queries seen on the interface; absent when not watched. */
  igmpQueries?: number;
}

function addressOf(peer: string): string {
  return peer.slice(0, peer.lastIndexOf(":"));
}

/** No multicast from the peer arrived, while its unicast did. */
function multicastInMissing(result: PeerResult): boolean {
  return result.unicast.heard > 0 && result.multicast.heard === 0 &&
    result.multicast.expected > 0;
}

/** Anything from the peer missing. */
function inboundMissing(result: PeerResult): boolean {
  return !result.up || result.unicast.heard < result.unicast.expected ||
    result.multicast.heard < result.multicast.expected;
}

/**
 * Decides the findings.
 *
 * @param input What was measured and read.
 * @returns The findings, local ones first, then per peer in peer order.
 */
export function diagnose(input: DiagnosisInput): Diagnosis[] {
  const { facts, ttl } = input;
  const iface = facts.iface;
  const out: Diagnosis[] = [];
  function add(code: DiagnosisCode, line: string, peer?: string): void {
    out.push({ code, iface, ...(peer === undefined ? {} : { peer }), line });
  }
  if (facts.multicastFlag === false && !facts.loopback) {
    add(
      "no-multicast-flag",
      `${iface} has no MULTICAST flag: programs and drivers that honour it leave multicast off there (ip link set dev ${iface} multicast on)`,
    );
  }
  if (!facts.loopback && facts.routes !== undefined) {
    const route = routeFor(facts.routes, input.group);
    if (route === undefined || route.iface !== iface) {
      const elsewhere = route === undefined
        ? 'fail with "Network is unreachable"'
        : `send it by ${route.iface}`;
      add(
        "no-multicast-route",
        `no route for 224.0.0.0/4 on ${iface}: programs that do not choose an interface ${elsewhere} (ip route add 224.0.0.0/4 dev ${iface})`,
      );
    }
  }
  if (input.buffer?.capped) {
    const b = input.buffer;
    add(
      "receive-buffer-capped",
      `receive buffer on ${iface} capped at ${b.receive} bytes, asked for ${b.requestedReceive}: bursts overflow it (sysctl -w net.core.rmem_max=${b.requestedReceive})`,
    );
  }
  const queries = input.igmpQueries ?? 0;
  const unclaimed = (input.delta.inMcastPkts ?? 0) - input.groupArrivals -
    (input.delta.rcvbufErrors ?? 0) - queries;
  let rpCounted = false;
  for (const result of input.results) {
    const peer = result.peer;
    const address = addressOf(peer);
    let inboundExplained = false;
    if (inboundMissing(result) && facts.rpFilter === 1 && facts.routes) {
      const back = routeFor(facts.routes, address);
      if (back !== undefined && back.iface !== iface) {
        add(
          "rp-filter",
          `rp_filter on ${iface} drops datagrams from ${address}: the route back to it leaves by ${back.iface} (set net.ipv4.conf.all.rp_filter and net.ipv4.conf.${iface}.rp_filter to 2 or 0)`,
          peer,
        );
        inboundExplained = rpCounted = true;
      }
    }
    // Beyond a router, multicast needs multicast routing and a larger TTL
    // (the ttl-too-small line below), not a fix on this link.
    const routed = (result.unicast.hops ?? 0) > 1;
    if (!inboundExplained && !routed && multicastInMissing(result)) {
      inboundExplained = true;
      if (unclaimed > 0) {
        add(
          "firewall",
          `a firewall drops multicast from ${address} to ${input.group}:${input.groupPort} on ${iface}: ${unclaimed} group datagrams reached IP but no socket (look at nft list ruleset, iptables -S)`,
          peer,
        );
      } else if (facts.loopback) {
        add(
          "multicast-blocked",
          `multicast from ${address} never reaches ${iface} though unicast does`,
          peer,
        );
      } else if (input.igmpQueries === 0) {
        add(
          "igmp-no-querier",
          `multicast from ${address} never reaches ${iface} though unicast does, and no IGMP query was seen: a switch with IGMP snooping and no querier drops the group (enable a querier on the switch or bridge)`,
          peer,
        );
      } else {
        const why = input.igmpQueries === undefined
          ? "IGMP queries could not be watched"
          : "IGMP queries arrive";
        add(
          "multicast-blocked",
          `multicast from ${address} never reaches ${iface} though unicast does (${why}): a switch or ${address} itself drops the group`,
          peer,
        );
      }
    }
    const u = result.unicast;
    const m = result.multicast;
    if (!result.up) {
      if (!inboundExplained) {
        add(
          "no-answer",
          `no answer from ${peer}: mcast-check does not run there, or unicast to it is blocked`,
          peer,
        );
      }
      continue;
    }
    if (m.answered === 0 && u.answered === 0 && u.sent > 0) {
      add(
        "no-answer",
        `no answer from ${address} by unicast or multicast, though it is heard: its answers do not come back (read the lines of mcast-check on ${address})`,
        peer,
      );
    } else if (m.answered === 0 && u.answered > 0) {
      if (u.hops !== undefined && u.hops > ttl) {
        add(
          "ttl-too-small",
          `TTL ${ttl} is too small for ${address}: it is ${u.hops} hops away by unicast (--ttl ${u.hops} or more, and routers that forward multicast)`,
          peer,
        );
      } else {
        add(
          "multicast-unanswered",
          `multicast to ${address} gets no answer though unicast does: read the lines of mcast-check on ${address}`,
          peer,
        );
      }
    }
  }
  if (!rpCounted && (input.delta.reversePathFilter ?? 0) > 0) {
    add(
      "rp-filter",
      `rp_filter dropped ${input.delta.reversePathFilter} datagrams during the check (IPReversePathFilter): check the routes back to the peers and net.ipv4.conf.${iface}.rp_filter`,
    );
  }
  const hopsMissing = input.results.some((r) =>
    (r.unicast.answered > 0 && r.unicast.hops === undefined) ||
    (r.multicast.answered > 0 && r.multicast.hops === undefined)
  );
  if (input.io === "deno" && hopsMissing) {
    add(
      "hops-unknown",
      `hop distance unknown ("hops ?"): the deno path cannot read received TTLs (use --io native)`,
    );
  }
  return out;
}
