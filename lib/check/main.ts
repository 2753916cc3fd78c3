/**
 * `mcast-check`'s front end and its thin act step: sockets, timers and
 * `/proc` readings around the pure {@linkcode CheckSession} and
 * {@linkcode diagnose}.
 *
 * @module
 */

import { errorLine, McastError, UsageError } from "../errors.ts";
import {
  batchWriter,
  type CliIo,
  resolveToolInterface,
  signalController,
} from "../cli/cli.ts";
import type { Peer } from "../net/address.ts";
import type { ResolvedInterface } from "../net/interfaces.ts";
import {
  chooseIo,
  type OpenedEndpoint,
  openGroup,
  openSender,
} from "../net/open.ts";
import type { DatagramEndpoint } from "../net/socket.ts";
import { VERSION } from "../version.ts";
import { diagnose } from "./diagnose.ts";
import {
  counterDelta,
  IgmpWatch,
  readCounters,
  readLocalFacts,
} from "./facts.ts";
import { CHECK_HELP, type CheckOptions, parseCheckArgs } from "./options.ts";
import {
  diagnosisJson,
  peerJson,
  peerText,
  summaryJson,
  summaryText,
} from "./printer.ts";
import { decodeCheckMessage, encodeCheckMessage } from "./probe.ts";
import { type CheckOutgoing, CheckSession, peerKey } from "./session.ts";

interface Output {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/**
 * Runs `mcast-check` with `args` and returns its exit status.
 *
 * @param args The command-line arguments, without the program name.
 * @param io Standard streams and interfaces, for tests.
 * @returns 0 when every peer is reachable by multicast, 1 when one is not
 * or the check failed, 2 on bad input.
 */
export async function checkMain(
  args: string[],
  io: CliIo = {},
): Promise<number> {
  const out: Output = {
    stdout: io.stdout ?? batchWriter(Deno.stdout, () => {}),
    stderr: io.stderr ?? batchWriter(Deno.stderr, () => {}),
  };
  try {
    const command = parseCheckArgs(args);
    switch (command.action) {
      case "help":
        out.stdout(CHECK_HELP);
        return 0;
      case "version":
        out.stdout(`mcast-check ${VERSION}`);
        return 0;
      case "run":
        return await runCheck(command.options, out, io);
      default:
        throw new UsageError(`Unknown action`);
    }
  } catch (error) {
    out.stderr(`mcast-check: ${errorLine(error)}`);
    return error instanceof McastError ? error.exitCode : 1;
  }
}

/**
 * A signal aborted on SIGINT or SIGTERM (or the caller's own signal), until
 * disposed.
 */
function stopSignal(
  given: AbortSignal | undefined,
): { signal: AbortSignal; dispose: () => void } {
  return given === undefined
    ? signalController()
    : { signal: given, dispose() {} };
}

/** The peers without this instance and without repeats. */
function otherPeers(options: CheckOptions, iface: ResolvedInterface): Peer[] {
  const seen = new Set<string>();
  const peers: Peer[] = [];
  for (const peer of options.peers) {
    const self = peer.address === iface.address &&
      peer.port === options.unicastPort;
    const key = peerKey(peer);
    if (self || seen.has(key)) continue;
    seen.add(key);
    peers.push({ address: peer.address, port: peer.port });
  }
  if (peers.length === 0) {
    throw new UsageError(
      `No peers besides this host (${iface.address}:${options.unicastPort}): name the other hosts`,
    );
  }
  return peers;
}

async function runCheck(
  options: CheckOptions,
  out: Output,
  io: CliIo,
): Promise<number> {
  const iface = resolveToolInterface(options.interface, 4, io);
  const peers = otherPeers(options, iface);
  const path = chooseIo(options.io);
  const facts = readLocalFacts(iface.name ?? "lo");
  const watch = path === "native" && !facts.loopback
    ? IgmpWatch.open(facts.iface)
    : undefined;
  const before = readCounters();
  let unicast: OpenedEndpoint | undefined;
  let group: OpenedEndpoint;
  try {
    unicast = await openSender(iface, {
      ttl: options.ttl,
      io: path,
      port: options.unicastPort,
      receiveTtl: true,
    });
    group = await openGroup(options.group, iface, {
      port: options.port,
      io: path,
      receiveTtl: true,
    });
  } catch (error) {
    unicast?.endpoint.close();
    if (watch instanceof IgmpWatch) watch.close();
    throw error;
  }
  const sender = unicast.endpoint;
  const id = crypto.getRandomValues(new Uint32Array(1))[0]!;
  const session = new CheckSession({
    id,
    peers,
    count: options.count,
    intervalMs: options.intervalMs,
    ttl: options.ttl,
    unicastTtl: facts.defaultTtl ?? 64,
    timeoutMs: options.timeoutMs,
    // A phase of its own (from the random id): instances started together
    // do not probe in lockstep.
    phaseMs: id / 2 ** 32 * options.intervalMs,
  }, performance.now());
  const groupTarget: Peer = {
    address: options.group.address,
    port: options.port,
  };
  let sendErrors = 0;
  let lastSendError = "";
  // The native endpoint batches sends until a macrotask flushes them:
  // probes and answers leave at once instead.
  const flush = (sender as { flush?: () => Promise<void> }).flush?.bind(sender);
  function failed(error: unknown): void {
    sendErrors += 1;
    lastSendError = errorLine(error);
  }
  function send(messages: CheckOutgoing[]): void {
    for (const { to, message } of messages) {
      const target = "peer" in to ? to.peer : groupTarget;
      // A round trip starts when the probe leaves, not when its round was
      // decided: stamped last, after the messages before it.
      const stamped = message.kind === "probe"
        ? { ...message, time: performance.now() }
        : message;
      sender.send(encodeCheckMessage(stamped), target).catch(failed);
      flush?.().catch(failed);
    }
  }
  let wake: (() => void) | undefined;
  let groupArrivals = 0;
  async function listen(
    endpoint: DatagramEndpoint,
    isGroup: boolean,
  ): Promise<void> {
    while (true) {
      const datagram = await endpoint.receive();
      if (datagram === null) return;
      if (isGroup) groupArrivals += 1;
      const message = decodeCheckMessage(datagram.payload);
      if (message === undefined) continue;
      send(session.receive(message, {
        from: datagram.from,
        group: isGroup,
        ...(datagram.ttl === undefined ? {} : { ttl: datagram.ttl }),
        now: performance.now(),
      }));
      wake?.();
    }
  }
  const listeners = [
    listen(sender, false),
    listen(group.endpoint, true),
  ];
  let after = before;
  const stop = stopSignal(io.signal);
  const onStop = () => wake?.();
  stop.signal.addEventListener("abort", onStop);
  try {
    while (true) {
      const now = performance.now();
      send(session.tick(now));
      // Stopped (Ctrl-C): print what was measured so far, as omping does.
      if (session.done(now) || stop.signal.aborted) break;
      const delay = Math.max(1, session.nextWake(now) - now);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
    // Before closing: a datagram arriving at a closed socket is no drop.
    after = readCounters();
  } finally {
    stop.signal.removeEventListener("abort", onStop);
    stop.dispose();
    sender.close();
    group.endpoint.close();
    await Promise.allSettled(listeners);
  }
  const delta = counterDelta(before, after);
  let igmpQueries: number | undefined;
  if (watch instanceof IgmpWatch) {
    try {
      igmpQueries = watch.queries();
    } finally {
      watch.close();
    }
  }
  const results = session.results();
  const diagnoses = diagnose({
    facts,
    results,
    ttl: options.ttl,
    group: options.group.address,
    groupPort: options.port,
    io: path,
    delta,
    groupArrivals,
    ...(group.buffers === undefined ? {} : { buffer: group.buffers }),
    ...(igmpQueries === undefined ? {} : { igmpQueries }),
  });
  if (sendErrors > 0) {
    out.stderr(
      `mcast-check: warning: ${sendErrors} probes could not be sent: ${lastSendError}`,
    );
  }
  for (const result of results) {
    if (options.json) out.stdout(peerJson(result));
    else peerText(result).forEach((line) => out.stdout(line));
  }
  for (const diagnosis of diagnoses) {
    out.stdout(options.json ? diagnosisJson(diagnosis) : diagnosis.line);
  }
  out.stdout(options.json ? summaryJson(results) : summaryText(results));
  return results.every((r) => r.reachable) ? 0 : 1;
}
