/**
 * `mcast-check`'s output: text lines for people, one JSON object per line
 * for scripts.
 *
 * @module
 */

import type { Diagnosis } from "./diagnose.ts";
import type { ChannelResult, PeerResult } from "./session.ts";

function ms(value: number): string {
  return value.toFixed(3);
}

function channelText(name: string, ch: ChannelResult): string {
  const rtt = ch.rtt === undefined
    ? "rtt -"
    : `rtt min/avg/max ${ms(ch.rtt.min)}/${ms(ch.rtt.avg)}/${
      ms(ch.rtt.max)
    } ms`;
  const hops = ch.hops === undefined ? "?" : String(ch.hops);
  return `${name}: ${ch.answered}/${ch.sent} answered, loss ${ch.loss}%, ${rtt}, dups ${ch.dups}, hops ${hops}, heard ${ch.heard}/${ch.expected}`;
}

/**
 * The two text lines of one peer: unicast, then multicast.
 *
 * @param result What was measured.
 * @returns The lines.
 */
export function peerText(result: PeerResult): string[] {
  return [
    `${result.peer} ${channelText("unicast", result.unicast)}`,
    `${result.peer} ${channelText("multicast", result.multicast)}`,
  ];
}

/**
 * The closing text line.
 *
 * @param results What was measured.
 * @returns One line.
 */
export function summaryText(results: PeerResult[]): string {
  const failed = results.filter((r) => !r.reachable).map((r) => r.peer);
  if (failed.length === 0) {
    return results.length === 1
      ? "multicast works with the 1 peer"
      : `multicast works with all ${results.length} peers`;
  }
  const of = results.length === 1
    ? "the 1 peer"
    : `${failed.length} of ${results.length} peers`;
  return `multicast fails with ${of}: ${failed.join(", ")}`;
}

/**
 * One peer as a JSON line.
 *
 * @param result What was measured.
 * @returns `{"type":"peer",...}`.
 */
export function peerJson(result: PeerResult): string {
  return JSON.stringify({ type: "peer", ...result });
}

/**
 * One finding as a JSON line, with its stable `code`.
 *
 * @param diagnosis The finding.
 * @returns `{"type":"diagnosis",...}`.
 */
export function diagnosisJson(diagnosis: Diagnosis): string {
  return JSON.stringify({ type: "diagnosis", ...diagnosis });
}

/**
 * The summary as a JSON line.
 *
 * @param results What was measured.
 * @returns `{"type":"summary","peers":N,"reachable":M}`.
 */
export function summaryJson(results: PeerResult[]): string {
  return JSON.stringify({
    type: "summary",
    peers: results.length,
    reachable: results.filter((r) => r.reachable).length,
  });
}
