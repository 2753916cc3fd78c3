/**
 * `mcast-bridge`'s front end: parses the command line, opens the legs,
 * runs the relay (`relay.ts`) until SIGINT or SIGTERM, and prints events
 * and a statistics line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorLine, McastError, UsageError } from "../errors.ts";
import { formatPeer, type Peer } from "../net/address.ts";
import { IO_CHOICES, type IoChoice, type IoPath } from "../net/io.ts";
import { chooseIo, openGroup, openSender } from "../net/open.ts";
import { resolveInterface } from "../net/interfaces.ts";
import type { DatagramEndpoint } from "../net/socket.ts";
import { GuardedEndpoint, type GuardOptions } from "../security/guard.ts";
import { readGroupKey, readPublicKey } from "../security/keys.ts";
import { chooseCrypto } from "../security/native_crypto.ts";
import { emptyDrops } from "../reliable/stats.ts";
import { loadState, saveState } from "../reliable/state.ts";
import { batchWriter } from "../cli/cli.ts";
import { count, droppedText } from "../cli/printer.ts";
import { parseInteger } from "../cli/options.ts";
import { VERSION } from "../version.ts";
import {
  type Leg,
  type MulticastLeg,
  parseHostPort,
  parseLeg,
  type PipeContext,
  pipeScheme,
  registerPipeScheme,
} from "./legs.ts";
import { DEFAULT_HOPS, UDP_SCHEME } from "./tunnel.ts";
import {
  type BridgeEvent,
  type BridgeStats,
  type MulticastSide,
  type PipeSide,
  Relay,
} from "./relay.ts";
import type { PipeSink, PipeSource } from "./pipe.ts";

registerPipeScheme("udp", UDP_SCHEME);

/** Default UDP port of a multicast leg that names none. */
const DEFAULT_PORT = 10000;

/** Help text of `mcast-bridge`. */
export const BRIDGE_HELP = `Usage: mcast-bridge --from LEG --to LEG [OPTIONS]

Relay a multicast group's datagrams to another segment, verbatim: plain
datagrams as they are, reliable sessions as a receiver upstream (it
acknowledges what it holds) and a repairing sender downstream (far receivers
are reported upstream as "NAME via BRIDGE"). No multicast routing needed.

Legs:
  GROUP[:PORT]@IF        a multicast group on an interface (name or address);
                         IPv6 with a port in brackets: [ff02::1:3]:10000@veth-b
                         (port default ${DEFAULT_PORT})
  udp://HOST:PORT        a tunnel to another bridge: --to sends there, --from
                         listens there (needs --key-file: frames are
                         authenticated with the group key)
  nats://HOST:PORT/SUBJECT[?stream=NAME]
                         a NATS broker: --to publishes there, --from reads
                         there (at most once; with ?stream= a JetStream
                         stream: acknowledged upstream once stored, and a far
                         bridge resumes where its --name stopped)

Options:
      --from LEG         where datagrams come from
      --to LEG           where they go
      --name NAME        the bridge's name upstream (default bridge-<random>,
                         or the one in --state)
      --state FILE       where it was, for a restart (like mcast-recv --state)
      --key-file FILE    the group key: frames are verified (forgeries are
                         dropped) but forwarded as the sender sealed them
      --trust PUBKEY     forward DATA only once this signer's signature covers
                         it (repeatable; a file or base64)
      --ttl N            TTL of datagrams sent downstream, 0-255 (default 1)
      --listen ADDR:PORT where a udp:// sink's socket binds
      --hops N           hop budget of datagrams entering a pipe (default ${DEFAULT_HOPS})
      --buffer SIZE      bytes held downstream for repairs (default 8MiB)
      --json             one JSON object per line and event, for scripts
      --io PATH          sockets and crypto: native, deno or auto (default)
  -h, --help             show this help and exit
  -V, --version          show the version and exit

Exit status: 0 stopped (SIGINT, SIGTERM), 1 run-time failure, 2 bad input.`;

/** The parsed command line of `mcast-bridge`. */
export interface BridgeOptions {
  /** Where datagrams come from. */
  from: Leg;
  /** Where they go. */
  to: Leg;
  /** The bridge's name, when given. */
  name?: string;
  /** `--state FILE`. */
  state?: string;
  /** `--key-file FILE`. */
  keyFile?: string;
  /** `--trust` keys. */
  trust: string[];
  /** Downstream TTL. */
  ttl: number;
  /** `--listen`. */
  listen?: Peer;
  /** Hop budget. */
  hops: number;
  /** Bytes held downstream. */
  bufferBytes: number;
  /** JSON events. */
  json: boolean;
  /** The I/O path. */
  io: IoChoice;
}

/** What {@linkcode parseBridgeArgs} asks for. */
export type BridgeCommand =
  | {
    /** `--help` or `--version`. */
    action: "help" | "version";
  }
  | {
    /** Run the bridge. */
    action: "run";
    /** With these options. */
    options: BridgeOptions;
  };

function size(name: string, text: string): number {
  const match = /^([0-9]+)\s*(K|M|G|Ki|Mi|Gi)?B?$/.exec(text);
  const units: Record<string, number> = {
    K: 1e3,
    M: 1e6,
    G: 1e9,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
  };
  const bytes = match ? Number(match[1]) * (units[match[2] ?? ""] ?? 1) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1024) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected a size of at least 1KiB (e.g. 8MiB)`,
    );
  }
  return bytes;
}

/**
 * Parses `mcast-bridge`'s arguments.
 *
 * @param args The arguments, without the program name.
 * @returns What to do.
 * @throws {UsageError} On bad input.
 */
export function parseBridgeArgs(args: string[]): BridgeCommand {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: "string" },
        to: { type: "string" },
        name: { type: "string" },
        state: { type: "string" },
        "key-file": { type: "string" },
        trust: { type: "string", multiple: true },
        ttl: { type: "string" },
        listen: { type: "string" },
        hops: { type: "string" },
        buffer: { type: "string" },
        json: { type: "boolean" },
        io: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }).values;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const option = /'(-[^']*)'/.exec(message)?.[1];
    throw new UsageError(
      /argument missing/.test(message) || /requires a value|argument/.test(
            message,
          ) && option
        ? `Option "${option?.split(" ")[0]}" needs a value`
        : option
        ? `Unknown option "${option}"`
        : message.split("\n")[0]!,
    );
  }
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  if (values.from === undefined || values.to === undefined) {
    throw new UsageError(
      `Options "--from" and "--to" are required (see mcast-bridge --help)`,
    );
  }
  const from = parseLeg("--from", values.from, DEFAULT_PORT);
  const to = parseLeg("--to", values.to, DEFAULT_PORT);
  if (from.kind === "pipe" && !pipeScheme(from.scheme)?.openSource) {
    throw new UsageError(
      `Invalid --from "${from.text}": ${from.scheme}:// legs only send`,
    );
  }
  if (to.kind === "pipe" && !pipeScheme(to.scheme)?.openSink) {
    throw new UsageError(
      `Invalid --to "${to.text}": ${to.scheme}:// legs only receive`,
    );
  }
  if (
    from.kind === "multicast" && to.kind === "multicast" &&
    from.group.address === to.group.address && from.port === to.port &&
    from.iface === to.iface
  ) {
    throw new UsageError(
      `Invalid --to "${to.text}": the same group on the same interface as --from`,
    );
  }
  const name = values.name;
  if (name !== undefined) {
    const bytes = new TextEncoder().encode(name).length;
    if (
      bytes < 1 || bytes > 64 || /[\p{Cc}\p{Cf},]|^\s|\s$/u.test(name)
    ) {
      throw new UsageError(
        `Invalid --name "${name}": 1-64 bytes of UTF-8, no control characters, commas or spaces at either end`,
      );
    }
  }
  const io = (values.io ?? "auto") as IoChoice;
  if (!IO_CHOICES.includes(io)) {
    throw new UsageError(
      `Invalid --io "${values.io}": expected ${IO_CHOICES.join(", ")}`,
    );
  }
  if ((values.trust?.length ?? 0) > 0 && values["key-file"] === undefined) {
    throw new UsageError(`Option "--trust" needs --key-file`);
  }
  return {
    action: "run",
    options: {
      from,
      to,
      ...(name === undefined ? {} : { name }),
      ...(values.state === undefined ? {} : { state: values.state }),
      ...(values["key-file"] === undefined
        ? {}
        : { keyFile: values["key-file"] }),
      trust: values.trust ?? [],
      ttl: values.ttl === undefined
        ? 1
        : parseInteger("ttl", values.ttl, { min: 0, max: 255 }),
      ...(values.listen === undefined
        ? {}
        : { listen: parseHostPort("--listen", values.listen) }),
      hops: values.hops === undefined
        ? DEFAULT_HOPS
        : parseInteger("hops", values.hops, { min: 1, max: 255 }),
      bufferBytes: values.buffer === undefined
        ? 8 * 1024 * 1024
        : size("buffer", values.buffer),
      json: values.json === true,
      io,
    },
  };
}

/** What `mcast-bridge` reads and writes; defaults to the process's. */
export interface BridgeIo {
  /** Writes one line to standard output. */
  stdout?: (line: string) => void;
  /** Writes one line to standard error. */
  stderr?: (line: string) => void;
  /** Stops the bridge; defaults to SIGINT and SIGTERM. */
  signal?: AbortSignal;
}

/**
 * The statistics line of a bridge.
 *
 * @param stats What it counted.
 * @returns One line.
 */
export function bridgeStatsLine(stats: BridgeStats): string {
  const f = stats.forwarded;
  const total = f.data + f.heartbeat + f.gone + f.plain;
  return `statistics: forwarded ${count(total, "datagram")} (${f.data} DATA, ${
    count(f.heartbeat, "heartbeat")
  }, ${f.gone} GONE, ${f.plain} plain), ${stats.repaired} repaired, ${stats.asked} asked upstream, ${
    count(stats.nacks, "NACK")
  }, ${count(stats.acks, "ACK")}, ${
    count(stats.feedback, "far feedback frame")
  }, ${count(stats.duplicates, "duplicate")}, ${
    count(stats.loops, "loop")
  } stopped, ${droppedText(stats.dropped)}${
    stats.paths === undefined
      ? ""
      : `, io ${stats.paths.io}${
        stats.paths.crypto === undefined ? "" : `, crypto ${stats.paths.crypto}`
      }`
  }`;
}

/**
 * Formats a bridge event as text lines.
 *
 * @param event The event.
 * @returns The lines (none for some events).
 */
export function bridgeText(event: BridgeEvent): string[] {
  switch (event.type) {
    case "bridge-start":
      return [`bridge ${event.name}: ${event.from} -> ${event.to}`];
    case "bridge-session":
      return [
        `${event.resumed ? "resumed" : "joined"} session ${event.session}${
          event.from ? ` from ${formatPeer(event.from)}` : ""
        } at sequence ${event.start}`,
      ];
    case "far-receiver":
      return [
        `far receiver ${event.name} joined from ${
          formatPeer(event.from)
        }, reported upstream as "${event.via}"`,
      ];
    case "far-receiver-left":
      return [
        `far receiver ${event.name} left, up to sequence ${event.acked}`,
      ];
    case "bridge-warning":
      return [];
    case "bridge-stopped":
      return [bridgeStatsLine(event.stats)];
  }
}

/**
 * Formats a bridge event as one line of JSON: `{"event": TYPE, "time":
 * ISO, ...}`.
 *
 * @param event The event.
 * @param now The clock, in epoch ms.
 * @returns One line.
 */
export function bridgeJson(
  event: BridgeEvent,
  now: () => number = Date.now,
): string {
  const { type, ...rest } = event;
  const fields: Record<string, unknown> = {
    event: type,
    time: new Date(now()).toISOString(),
  };
  for (const [key, value] of Object.entries(rest)) {
    fields[key] = value;
  }
  return JSON.stringify(fields);
}

function signals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  Deno.addSignalListener("SIGINT", abort);
  Deno.addSignalListener("SIGTERM", abort);
  return {
    signal: controller.signal,
    dispose() {
      Deno.removeSignalListener("SIGINT", abort);
      Deno.removeSignalListener("SIGTERM", abort);
    },
  };
}

function randomName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(2));
  return `bridge-${
    Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Everything opened, closed in reverse order in every outcome. */
class Opened {
  #closers: (() => unknown)[] = [];

  add(close: () => unknown): void {
    this.#closers.push(close);
  }

  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) {
      try {
        await close();
      } catch {
        // Closing what failed to open fully.
      }
    }
    this.#closers = [];
  }
}

async function openMulticast(
  leg: MulticastLeg,
  direction: "from" | "to",
  context: {
    options: BridgeOptions;
    guard?: GuardOptions;
    opened: Opened;
    io?: IoPath;
  },
  stderr: (line: string) => void,
): Promise<MulticastSide> {
  const { options, guard, opened } = context;
  const iface = resolveInterface(leg.iface, leg.group.family);
  const io = chooseIo(options.io);
  const socket = direction === "from"
    ? await openGroup(leg.group, iface, { port: leg.port, io })
    : await openSender(iface, { ttl: options.ttl, io });
  for (const warning of socket.warnings) stderr(`mcast-bridge: ${warning}`);
  context.io = socket.io;
  const raw = socket.endpoint;
  const endpoint: DatagramEndpoint = guard
    ? new GuardedEndpoint(raw, { ...guard, keepSealed: true })
    : raw;
  opened.add(() => endpoint.close());
  return {
    kind: "multicast",
    endpoint,
    raw,
    ...(direction === "to"
      ? {
        to: {
          address: leg.group.address,
          port: leg.port,
          ...(leg.group.family === 6 ? { scopeId: iface.index } : {}),
        },
      }
      : {}),
  };
}

async function runBridge(
  options: BridgeOptions,
  io: BridgeIo,
  out: { stdout: (line: string) => void; stderr: (line: string) => void },
): Promise<number> {
  const dropped = emptyDrops();
  const saved = options.state === undefined ? null : loadState(options.state);
  const name = options.name ?? saved?.name ?? randomName();
  let guard: GuardOptions | undefined;
  if (options.keyFile !== undefined) {
    guard = {
      key: readGroupKey(options.keyFile),
      dropped,
      crypto: chooseCrypto(options.io),
    };
    if (options.trust.length > 0) {
      guard.trust = options.trust.map(readPublicKey);
    }
  }
  const opened = new Opened();
  opened.add(() => guard?.crypto?.close());
  try {
    const context: PipeContext = {
      url: new URL("udp://0.0.0.0:1"),
      name,
      ...(guard ? { key: guard.key } : {}),
      ...(guard?.crypto ? { crypto: guard.crypto } : {}),
      ...(options.listen ? { listen: options.listen } : {}),
    };
    const legContext: Parameters<typeof openMulticast>[2] = {
      options,
      ...(guard ? { guard } : {}),
      opened,
    };
    let upstream: MulticastSide | PipeSide<PipeSource>;
    if (options.from.kind === "multicast") {
      upstream = await openMulticast(
        options.from,
        "from",
        legContext,
        out.stderr,
      );
    } else {
      const source = await pipeScheme(options.from.scheme)!.openSource!({
        ...context,
        url: options.from.url,
      });
      opened.add(() => source[Symbol.asyncDispose]());
      upstream = { kind: "pipe", pipe: source };
    }
    let downstream: MulticastSide | PipeSide<PipeSink>;
    if (options.to.kind === "multicast") {
      downstream = await openMulticast(
        options.to,
        "to",
        legContext,
        out.stderr,
      );
    } else {
      const sink = await pipeScheme(options.to.scheme)!.openSink!({
        ...context,
        url: options.to.url,
      });
      opened.add(() => sink[Symbol.asyncDispose]());
      downstream = { kind: "pipe", pipe: sink };
    }
    const print = (event: BridgeEvent) => {
      if (event.type === "bridge-warning" && !options.json) {
        out.stderr(`mcast-bridge: warning: ${event.message}`);
        return;
      }
      if (options.json) out.stdout(bridgeJson(event));
      else for (const line of bridgeText(event)) out.stdout(line);
    };
    const statePath = options.state;
    const relay = new Relay({
      name,
      upstream,
      downstream,
      legs: { from: options.from.text, to: options.to.text },
      keyed: guard !== undefined,
      state: saved,
      ...(statePath === undefined
        ? {}
        : { save: (state) => saveState(statePath, state) }),
      hops: options.hops,
      bufferBytes: options.bufferBytes,
      onEvent: print,
      dropped,
      ...(legContext.io === undefined ? {} : {
        paths: guard?.crypto
          ? { io: legContext.io, crypto: guard.crypto.name }
          : { io: legContext.io },
      }),
    });
    if (io.signal) {
      await relay.run(io.signal);
    } else {
      const stop = signals();
      try {
        await relay.run(stop.signal);
      } finally {
        stop.dispose();
      }
    }
    return 0;
  } finally {
    await opened.close();
  }
}

/**
 * Runs `mcast-bridge` with `args` and returns its exit status.
 *
 * @param args The command-line arguments.
 * @param io Output and stop signal, for tests.
 * @returns The exit status: 0 stopped, 1 run-time failure, 2 bad input.
 */
export async function bridgeMain(
  args: string[],
  io: BridgeIo = {},
): Promise<number> {
  const out = {
    stdout: io.stdout ?? batchWriter(Deno.stdout, () => {}),
    stderr: io.stderr ?? ((line: string) => console.error(line)),
  };
  try {
    const command = parseBridgeArgs(args);
    if (command.action !== "run") {
      out.stdout(
        command.action === "help" ? BRIDGE_HELP : `mcast-bridge ${VERSION}`,
      );
      return 0;
    }
    return await runBridge(command.options, io, out);
  } catch (error) {
    out.stderr(`mcast-bridge: ${errorLine(error)}`);
    return error instanceof McastError ? error.exitCode : 1;
  }
}
