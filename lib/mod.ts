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

export * from "./address.ts";
export * from "./cli.ts";
export * from "./errors.ts";
export type * from "./events.ts";
export * from "./fault.ts";
export * from "./guard.ts";
export * from "./frame.ts";
export * from "./help.ts";
export * from "./interfaces.ts";
export * from "./journal.ts";
export * from "./keys.ts";
export * from "./memory_net.ts";
export * from "./options.ts";
export * from "./payload.ts";
export * from "./printer.ts";
export * from "./ranges.ts";
export * from "./receiver.ts";
export * from "./reliable_receiver.ts";
export * from "./reliable_sender.ts";
export * from "./schedule.ts";
export * from "./sender.ts";
export * from "./socket.ts";
export * from "./state.ts";
export * from "./stats.ts";
export * from "./text.ts";
export * from "./version.ts";
