/**
 * The exercise's output, line by line, for the process tests: builders of
 * the exact text `mcast-recv` and `mcast-send` (and the exercise's own
 * Python peers) print, readers of the ports that text names, and
 * {@linkcode exchange} and {@linkcode exchangeWith}, which run receivers and
 * a sender against each other and assert that all ended cleanly.
 *
 * The builders of output return whole lines, each ending in `\n`;
 * {@linkcode peer} and {@linkcode loopback} build the address tuples that
 * go into them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Finished, type RunningProcess, spawnTool } from "./_tools.ts";

/** The receiver's line before each datagram it waits for. */
export const WAITING = "waiting to receive message";

/** The sender's default message. */
export const MESSAGE = "very important data";

/** The loopback address every test on this host sends from and joins on. */
export const LOOPBACK = "127.0.0.1";

/**
 * An address as Python prints it: `('ADDR', P)`, or `('ADDR', P, 0, N)`
 * for IPv6, where `N` is the interface index (the scope).
 */
export function peer(
  address: string,
  port: number | string,
  scope?: number,
): string {
  return scope === undefined
    ? `('${address}', ${port})`
    : `('${address}', ${port}, 0, ${scope})`;
}

/** {@linkcode peer} on the loopback address: `('127.0.0.1', P)`. */
export function loopback(port: number | string): string {
  return peer(LOOPBACK, port);
}

/**
 * The receiver's lines for one datagram of `bytes` bytes from `from` (a
 * {@linkcode peer}), shown as `shown`:
 * `received N bytes from FROM : TEXT`, then, unless `ack` is false,
 * `sending acknowledgement to FROM`.
 */
export function receivedLines(
  from: string,
  bytes: number,
  shown: string,
  options: { ack?: boolean } = {},
): string {
  const ack = options.ack ?? true;
  return `received ${bytes} bytes from ${from} : ${shown}\n` +
    (ack ? `sending acknowledgement to ${from}\n` : "");
}

/**
 * The receiver's whole output: `waiting to receive message`, then each
 * datagram's {@linkcode receivedLines}, separated by a blank line and
 * `waiting to receive message`. After the last datagram the receiver
 * either stops (`"stop"`: its `--count` was reached) or prints the blank
 * line and waits again (`"wait"`: it was then ended by a signal).
 */
export function receiverOutput(
  datagrams: string[],
  after: "stop" | "wait",
): string {
  const again = `\n${WAITING}\n`;
  return `${WAITING}\n` + datagrams.join(again) +
    (after === "wait" && datagrams.length > 0 ? again : "");
}

/**
 * The receiver's whole output ({@linkcode receiverOutput}) for one datagram
 * ({@linkcode receivedLines}); after it the receiver stops unless `after`
 * says `"wait"`.
 */
export function oneDatagram(
  from: string,
  bytes: number,
  shown: string,
  options: { ack?: boolean; after?: "stop" | "wait" } = {},
): string {
  return receiverOutput(
    [receivedLines(from, bytes, shown, options)],
    options.after ?? "stop",
  );
}

/**
 * One acknowledgement line of the sender: `received "TEXT" from FROM`,
 * where `from` is a {@linkcode peer} and `text` the acknowledgement shown.
 */
export function ackLine(from: string, text = "ack"): string {
  return `received "${text}" from ${from}\n`;
}

/**
 * The sender's whole output: `sending "TEXT"`, `waiting to receive`, the
 * given {@linkcode ackLine}s, `closing socket`.
 */
export function senderOutput(shown: string, acks: string[]): string {
  return `sending "${shown}"\nwaiting to receive\n` + acks.join("") +
    "closing socket\n";
}

/** The ports of every address tuple in `text` (see {@linkcode peer}), in order. */
export function peerPorts(text: string): number[] {
  return [...text.matchAll(/\('[^']*', ([0-9]+)/g)].map((m) => Number(m[1]));
}

/**
 * The sender's port as the receiver's first `received N bytes from (...)`
 * line names it; fails when there is no such line.
 */
export function senderPort(stdout: string): number {
  const match = /^received [0-9]+ bytes from \('[^']*', ([0-9]+)/m.exec(
    stdout,
  );
  assert.ok(match, `no "received" line in:\n${stdout}`);
  return Number(match[1]);
}

/** Asserts a clean, successful end: empty stderr, exit code 0, no signal. */
export function assertOk(result: Finished, what: string): void {
  assert.equal(result.stderr, "", `${what} stderr`);
  assert.equal(result.code, 0, `${what} exit code (stdout ${result.stdout})`);
  assert.equal(result.signal, null, `${what} ended by a signal`);
}

/** Options of {@linkcode exchangeWith} and {@linkcode exchange}. */
export interface ExchangeOptions {
  /**
   * How the receivers end: `"count"` (the default), by themselves once
   * their `--count` is reached; or this signal, sent once each received,
   * acknowledged and printed `waiting to receive message` again.
   */
  stop?: "count" | Deno.Signal;
}

/** The results of {@linkcode exchangeWith} for receivers `T`. */
export interface Exchanged<T extends RunningProcess[]> {
  /** How each receiver ended, in the order given. */
  recv: { [K in keyof T]: Finished };
  /** How the sender ended. */
  send: Finished;
  /** How long the sender ran, in milliseconds. */
  senderMs: number;
}

/**
 * Waits until each of `receivers` printed `waiting to receive message`,
 * runs the sender that `startSender` starts to its end, ends the receivers
 * (see {@linkcode ExchangeOptions.stop}) and asserts that the receivers,
 * then the sender, ended cleanly ({@linkcode assertOk}). Every wait is
 * bounded: a process still running after 15 s is killed and fails.
 */
export async function exchangeWith<T extends RunningProcess[]>(
  receivers: [...T],
  startSender: () => RunningProcess,
  options: ExchangeOptions = {},
): Promise<Exchanged<T>> {
  for (const receiver of receivers) await receiver.waitForOutput(WAITING);
  const started = Date.now();
  await using sender = startSender();
  const send = await sender.finish();
  const senderMs = Date.now() - started;
  const stop = options.stop ?? "count";
  if (stop !== "count") {
    for (const receiver of receivers) {
      await receiver.waitForOutput(WAITING, { count: 2 });
      receiver.kill(stop);
    }
  }
  const recv: Finished[] = [];
  for (const receiver of receivers) recv.push(await receiver.finish());
  recv.forEach((result, index) => assertOk(result, `receiver ${index + 1}`));
  assertOk(send, "sender");
  return { recv: recv as Exchanged<T>["recv"], send, senderMs };
}

/** The results of {@linkcode exchange}. */
export interface Exchange {
  /** How the receiver ended. */
  recv: Finished;
  /** How the sender ended. */
  send: Finished;
  /** The sender's port, as the receiver's output names it. */
  from: number;
}

/**
 * Runs `mcast-send sendArgs` (with `stdin` on its standard input) against
 * `receiver` once it waits, see {@linkcode exchangeWith}: `receiver` is
 * either the arguments of an `mcast-recv` started and ended here, or a
 * receiver already running, which the caller disposes of. Returns both
 * results and the sender's port ({@linkcode senderPort}).
 */
export async function exchange(
  receiver: string[] | RunningProcess,
  sendArgs: string[],
  options: ExchangeOptions & { stdin?: string | Uint8Array } = {},
): Promise<Exchange> {
  const running = Array.isArray(receiver)
    ? spawnTool("recv", receiver)
    : receiver;
  // Only a receiver started here is ended here.
  await using _started = running === receiver ? undefined : running;
  const { recv: [recv], send } = await exchangeWith(
    [running],
    () => spawnTool("send", sendArgs, { stdin: options.stdin }),
    options,
  );
  return { recv, send, from: senderPort(recv.stdout) };
}
