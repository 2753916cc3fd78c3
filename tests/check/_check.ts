/**
 * What the `mcast-check` process tests share: its output with the measured
 * round trips masked, and the lines of a healthy peer.
 *
 * @module
 */

const RTT =
  /rtt min\/avg\/max [0-9]+\.[0-9]{3}\/[0-9]+\.[0-9]{3}\/[0-9]+\.[0-9]{3} ms/g;

/** Output with every measured round trip replaced by `rtt X`. */
export function masked(text: string): string {
  return text.replace(RTT, "rtt X");
}

/**
 * The two lines (masked) of a peer that answered and was heard 3 times out
 * of 3 on both channels, 1 hop away.
 *
 * @param peer The peer, as `address:port`.
 * @returns The two lines, each ending in a newline.
 */
export function healthy(peer: string): string {
  return `${peer} unicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 3/3
${peer} multicast: 3/3 answered, loss 0%, rtt X, dups 0, hops 1, heard 3/3
`;
}
