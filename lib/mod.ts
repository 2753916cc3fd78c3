/**
 * mcast: one-to-many messaging over IP multicast.
 *
 * The library behind `mcast-send` and `mcast-recv`. Data flows one way:
 * socket ({@linkcode openGroupSocket}, {@linkcode openSenderSocket}) →
 * logic ({@linkcode sendBulletin}, {@linkcode receiveBulletins}) → events →
 * printers ({@linkcode senderText}, {@linkcode receiverText},
 * {@linkcode eventJson}).
 *
 * @example Receive one bulletin on loopback and acknowledge it
 * ```ts ignore
 * import { openGroupSocket, parseGroup, receiveBulletins, receiverText, resolveInterface } from "./mod.ts";
 * const group = parseGroup("224.1.1.1");
 * const iface = resolveInterface("127.0.0.1", group.family);
 * const endpoint = await openGroupSocket(group, iface, { port: 10000 });
 * await receiveBulletins(endpoint, {
 *   group, port: 10000, ack: new TextEncoder().encode("ack"), count: 1,
 *   onEvent: (event) => receiverText(event).forEach((line) => console.log(line)),
 * });
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export type * from "./events.ts";
export * from "./receiver.ts";
export * from "./sender.ts";
export * from "./version.ts";
export * from "./bridge/downstream.ts";
export * from "./bridge/legs.ts";
export * from "./bridge/main.ts";
export * from "./bridge/mroute.ts";
export * from "./bridge/pacer.ts";
export type * from "./bridge/pipe.ts";
export * from "./bridge/relay.ts";
export * from "./bridge/tunnel.ts";
export * from "./bridge/upstream.ts";
export * from "./check/main.ts";
export * from "./cli/cli.ts";
export * from "./cli/help.ts";
export * from "./cli/options.ts";
export * from "./cli/payload.ts";
export * from "./cli/printer.ts";
export * from "./cli/progress.ts";
export * from "./cli/text.ts";
export * from "./net/address.ts";
export * from "./net/fault.ts";
export * from "./net/interfaces.ts";
export * from "./net/io.ts";
export * from "./net/memory_net.ts";
export * from "./net/native_socket.ts";
export * from "./net/open.ts";
export * from "./net/socket.ts";
export * from "./reliable/digest.ts";
export * from "./reliable/journal.ts";
export * from "./reliable/receiver.ts";
export * from "./reliable/schedule.ts";
export * from "./reliable/sender.ts";
export * from "./reliable/state.ts";
export * from "./reliable/stats.ts";
export * from "./security/crypto.ts";
export * from "./security/guard.ts";
export * from "./security/keys.ts";
export * from "./security/native_crypto.ts";
export * from "./wire/frame.ts";
export * from "./wire/ranges.ts";
