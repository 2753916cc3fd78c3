/**
 * Command-line parsing and validation for `mcast-send` and `mcast-recv`.
 * Pure: turns an argument list into validated options or a
 * {@linkcode UsageError}; no I/O happens here.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  addressFamily,
  type Group,
  normalizeIPv6,
  parseGroup,
} from "../net/address.ts";
import { UsageError } from "../errors.ts";
import { IO_CHOICES, type IoChoice } from "../net/io.ts";
import { MAX_NAME_BYTES } from "../wire/frame.ts";
import { DEFAULT_MAX_SKEW_MS } from "../security/guard.ts";
import { DEFAULT_TAKEOVER_MS } from "../reliable/standby.ts";
import { MAX_STATE_SESSIONS } from "../reliable/state.ts";

/** The exercise's defaults, which are the tools' defaults. */
export const DEFAULTS = {
  group: "224.1.1.1",
  port: 10000,
  ttl: 1,
  message: "very important data",
  ack: "ack",
  interface: "127.0.0.1",
  waitSeconds: 1,
} as const;

/** Largest UDP payload one datagram carries (IPv4: 65,535 - 20 - 8). */
export const MAX_PAYLOAD = 65507;

/** Defaults of the reliable mode's options. */
export const RELIABLE_DEFAULTS = {
  /** `--deadline`, in seconds. */
  deadlineSeconds: 10,
  /** `--buffer`: 8 MiB. */
  bufferBytes: 8 * 1024 * 1024,
  /** `--window`, in packets. */
  window: 4096,
  /** `--max-size` of both tools: 16 MiB. */
  maxSize: 16 * 1024 * 1024,
  /** `--mtu`: bytes of UDP payload per packet. */
  mtu: 1400,
} as const;

/** Most receivers `--expect` and `--receivers` name in reliable mode. */
export const MAX_RECEIVERS = 100_000;

/** Options both tools share. */
export interface CommonOptions {
  /** The multicast group. */
  group: Group;
  /** The group's UDP port. */
  port: number;
  /** The `--interface` value, resolved later against the system. */
  interface: string;
  /** Print one JSON object per event instead of the exercise's text. */
  json: boolean;
  /** `--io`: the socket and crypto path (default `auto`). */
  io: IoChoice;
}

/** Where the sender's payload comes from. */
export type PayloadSource =
  | { kind: "text"; text: string }
  | { kind: "file"; path: string }
  | { kind: "stdin" };

/** A rate limit. */
export interface Rate {
  /** What is counted: whole bulletins or bytes. */
  unit: "bulletins" | "bytes";
  /** How many of them per second. */
  perSecond: number;
}

/** Options of `mcast-send --reliable`. */
export interface ReliableSendOptions {
  /**
   * `--lines`: each input line is one bulletin. The input is `--file PATH`,
   * `--file -` or, without `--file`, standard input.
   */
  lines: boolean;
  /**
   * `--deadline`: how long to wait for acknowledgements after the last
   * bulletin was sent (and for the roster before the first), in
   * milliseconds.
   */
  deadlineMs: number;
  /** `--receivers`: the roster by name; excludes `--expect`. */
  receivers?: string[];
  /** `--rate`: bulletins or bytes per second. */
  rate?: Rate;
  /** `--repair-rate`: the retransmissions' own budget. */
  repairRate?: Rate;
  /** `--buffer`: bytes the retransmission buffer holds. */
  bufferBytes: number;
  /** `--window`: how many packets the sender runs ahead of the slowest receiver. */
  window: number;
  /** `--drop-slow`: evict a receiver that falls a window behind instead of waiting. */
  dropSlow: boolean;
  /** `--max-size`: the largest bulletin, in bytes. */
  maxSize: number;
  /** `--mtu`: bytes of UDP payload per packet. */
  mtu: number;
  /** `--journal`: the directory bulletins are written to before sending. */
  journal?: string;
  /**
   * `--standby`: follow the session a primary sends on the group, silently,
   * and take it over when the primary falls silent for `takeoverMs`.
   */
  standby?: boolean;
  /**
   * `--takeover`: the primary's silence that makes a standby take over, in
   * ms (default 1000; set with `standby`).
   */
  takeoverMs?: number;
}

/** Keys and what they protect (`--key-file` and the options that need it). */
export interface KeyOptions {
  /** `--key-file`: the group key every frame is authenticated with. */
  keyFile: string;
  /** `--encrypt` (sender): encrypt bulletins too. */
  encrypt: boolean;
  /** `--sign-key` (sender): the Ed25519 key bulletins are signed with. */
  signKey?: string;
  /** `--trust` (receiver): public keys, or `.pub` files, of trusted signers. */
  trust: string[];
  /** `--allow-plain` (receiver): still answer plain datagrams. */
  allowPlain: boolean;
  /** `--max-skew`: frames sent longer ago (or ahead) are stale, in ms. */
  maxSkewMs: number;
}

/** Validated options of `mcast-send`. */
export interface SendOptions extends CommonOptions {
  /** The payload: `--message`, `--file PATH` or `--file -`. */
  payload: PayloadSource;
  /** Multicast TTL (IPv4) or hop limit (IPv6), 0-255. */
  ttl: number;
  /** How long to wait for acknowledgements, in milliseconds. */
  waitMs: number;
  /**
   * Stop after this many acknowledgements; fail if fewer arrive. With
   * `--reliable`: the number of receivers on the roster.
   */
  expect?: number;
  /** Present exactly when `--reliable` is given. */
  reliable?: ReliableSendOptions;
  /** Present exactly when `--key-file` is given (it needs `--reliable`). */
  keys?: KeyOptions;
}

/** Validated options of `mcast-recv`. */
export interface RecvOptions extends CommonOptions {
  /** Exit after this many messages. */
  count?: number;
  /** The acknowledgement payload, or `null` for `--no-ack`. */
  ack: Uint8Array | null;
  /** `--name`: this receiver's name in the reliable protocol. */
  name?: string;
  /** `--output`: the directory delivered bulletins are written to. */
  output?: string;
  /** `--state`: the file that remembers what was delivered. */
  state?: string;
  /** `--from-start`: ask for every bulletin the sender still holds. */
  fromStart: boolean;
  /** `--max-size`: the largest bulletin accepted, in bytes. */
  maxSize: number;
  /** `--max-sessions`: most sessions followed at once (default 4). */
  maxSessions?: number;
  /**
   * `--source`: source-specific multicast, only datagrams from this address
   * (normalized; same family as the group).
   */
  source?: string;
  /** Present exactly when `--key-file` is given. */
  keys?: KeyOptions;
}

/** What the command line asks for. */
export type Command<T> =
  | { action: "help" }
  | { action: "version" }
  | {
    /** `--gen-key PATH` or `--gen-sign-key PATH`: write a new key file. */
    action: "gen-key";
    /** Where to write it. */
    path: string;
    /** A group key or an Ed25519 signing key. */
    kind: "group" | "ed25519";
  }
  | { action: "run"; options: T };

/**
 * The `parseArgs` options every tool takes: group, port, interface, output
 * and I/O path, help and version.
 */
export const COMMON_OPTIONS = {
  group: { type: "string", short: "g" },
  port: { type: "string", short: "p" },
  interface: { type: "string", short: "i" },
  json: { type: "boolean" },
  io: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

const SEND = {
  ...COMMON_OPTIONS,
  message: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  ttl: { type: "string", short: "t" },
  wait: { type: "string", short: "w" },
  expect: { type: "string", short: "e" },
  reliable: { type: "boolean" },
  lines: { type: "boolean", short: "l" },
  deadline: { type: "string" },
  receivers: { type: "string" },
  rate: { type: "string" },
  "repair-rate": { type: "string" },
  buffer: { type: "string" },
  window: { type: "string" },
  "drop-slow": { type: "boolean" },
  "max-size": { type: "string" },
  mtu: { type: "string" },
  journal: { type: "string" },
  standby: { type: "boolean" },
  takeover: { type: "string" },
  "gen-key": { type: "string" },
  "gen-sign-key": { type: "string" },
  "key-file": { type: "string" },
  encrypt: { type: "boolean" },
  "sign-key": { type: "string" },
  "max-skew": { type: "string" },
} as const;

/** Options of `mcast-send` that only `--reliable` accepts. */
const RELIABLE_ONLY: ReadonlySet<string> = new Set([
  "lines",
  "deadline",
  "receivers",
  "rate",
  "repair-rate",
  "buffer",
  "window",
  "drop-slow",
  "max-size",
  "mtu",
  "journal",
  "standby",
  "takeover",
  "key-file",
  "encrypt",
  "sign-key",
  "max-skew",
]);

/** Options that need `--key-file`. */
const KEY_ONLY: ReadonlySet<string> = new Set([
  "encrypt",
  "sign-key",
  "max-skew",
  "trust",
  "allow-plain",
]);

const RECV = {
  ...COMMON_OPTIONS,
  count: { type: "string", short: "c" },
  ack: { type: "string" },
  "no-ack": { type: "boolean" },
  name: { type: "string" },
  output: { type: "string" },
  state: { type: "string" },
  "from-start": { type: "boolean" },
  "max-size": { type: "string" },
  "max-sessions": { type: "string" },
  source: { type: "string" },
  "key-file": { type: "string" },
  trust: { type: "string", multiple: true },
  "allow-plain": { type: "boolean" },
  "max-skew": { type: "string" },
} as const;

/** The option table `parseArgs` from `node:util` takes. */
export interface ParseConfig {
  /** One option by its long name: its type, short name, repeatability. */
  [name: string]: {
    type: "string" | "boolean";
    short?: string;
    multiple?: boolean;
  };
}

type Values = Record<string, string | boolean | string[] | undefined>;

interface Parsed {
  /** The last value of each option. */
  values: Values;
  /** The long names of the options given, in argument order. */
  order: string[];
}

function parse(args: string[], options: ParseConfig): Parsed {
  try {
    const { values, tokens } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: false,
      tokens: true,
    });
    const order = tokens.flatMap((token) =>
      token.kind === "option" ? [token.name] : []
    );
    return { values: values as Values, order };
  } catch (error) {
    throw translateParseError(error, options);
  }
}

/**
 * Turns an error of `parseArgs` from `node:util` into a one-line
 * {@linkcode UsageError} (the tools' wording).
 *
 * @param error What `parseArgs` threw.
 * @param options The option table it was given.
 * @returns The usage error.
 */
export function translateParseError(
  error: unknown,
  options: ParseConfig,
): Error {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`Unknown option "${quoted}"`);
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`Unexpected argument "${quoted}"`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const long = /--([\w-]+)/.exec(quoted)?.[1] ??
        Object.entries(options).find(([, o]) => `-${o.short}` === quoted)
          ?.[0] ??
        quoted.replace(/^-+/, "");
      if (message.includes("does not take an argument")) {
        return new UsageError(`Option "--${long}" does not take a value`);
      }
      if (message.includes("ambiguous")) {
        return new UsageError(
          `Option "--${long}" needs a value (write --${long}=-VALUE for a value that starts with "-")`,
        );
      }
      return new UsageError(`Option "--${long}" needs a value`);
    }
    default:
      return new UsageError(message.split("\n")[0]!);
  }
}

/** Options of {@linkcode parseInteger}. */
export interface IntegerRange {
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value. */
  max: number;
}

/**
 * Parses a decimal integer option value within a range.
 *
 * @param name The option's long name, for the error message.
 * @param text The value given.
 * @param range The accepted range.
 * @returns The integer.
 * @throws {UsageError} When `text` is not a decimal integer in range.
 */
export function parseInteger(
  name: string,
  text: string,
  range: IntegerRange,
): number {
  const value = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(value >= range.min && value <= range.max)) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected a whole number from ${range.min} to ${range.max}`,
    );
  }
  return value;
}

/**
 * Parses a duration in seconds (decimal fractions allowed, up to one day).
 *
 * @param name The option's long name, for the error message.
 * @param text The value given.
 * @returns Milliseconds.
 * @throws {UsageError} When `text` is not a number of seconds in range.
 */
export function parseSeconds(name: string, text: string): number {
  const value = /^[0-9]{1,6}(\.[0-9]{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(value >= 0 && value <= 86400)) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected seconds from 0 to 86400 (e.g. 1 or 0.5)`,
    );
  }
  return Math.round(value * 1000);
}

const UNITS: readonly (readonly [string, number])[] = [
  ["GiB", 1024 ** 3],
  ["MiB", 1024 ** 2],
  ["KiB", 1024],
  ["GB", 1000 ** 3],
  ["MB", 1000 ** 2],
  ["KB", 1000],
];

const MULTIPLIERS: Record<string, number> = {
  "": 1,
  k: 1000,
  m: 1000 ** 2,
  g: 1000 ** 3,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

/**
 * Formats a number of bytes with the unit that shows it exactly in the
 * fewest digits: `65536` is `64KiB`, `2000000` is `2MB`, `1500` is `1500B`.
 *
 * @param bytes A whole number of bytes.
 * @returns The size as {@linkcode parseSize} accepts it.
 */
export function formatSize(bytes: number): string {
  let best = `${bytes}B`;
  let digits = bytes;
  for (const [unit, size] of UNITS) {
    const count = bytes / size;
    if (Number.isInteger(count) && count >= 1 && count < digits) {
      best = `${count}${unit}`;
      digits = count;
    }
  }
  return best;
}

/** A whole number with an optional byte unit, or `undefined`. */
function sizeParts(text: string): { bytes: number; unit: boolean } | undefined {
  const match = /^([0-9]{1,15})(?:([kmg]i?)b?|(b))?$/i.exec(text);
  if (!match) return undefined;
  const [, digits, prefix, b] = match;
  const multiplier = MULTIPLIERS[(prefix ?? "").toLowerCase()]!;
  return {
    bytes: Number(digits) * multiplier,
    unit: prefix !== undefined || b !== undefined,
  };
}

/**
 * Parses a size in bytes: a whole number, optionally with a unit. `K`, `M`
 * and `G` are 1000-based, `Ki`, `Mi` and `Gi` 1024-based; a `B` may follow
 * them or stand alone; letters are case-insensitive (`500KB`, `8MiB`,
 * `64kib`, `100B`, `4096`).
 *
 * @param name The option's long name, for the error message.
 * @param text The value given.
 * @param range The accepted range, in bytes.
 * @returns The size in bytes.
 * @throws {UsageError} When `text` is not a size in range.
 */
export function parseSize(
  name: string,
  text: string,
  range: IntegerRange,
): number {
  const bytes = sizeParts(text)?.bytes ?? NaN;
  if (!(bytes >= range.min && bytes <= range.max)) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected a size from ${
        formatSize(range.min)
      } to ${formatSize(range.max)} (bytes, e.g. 65536, 500KB or 8MiB)`,
    );
  }
  return bytes;
}

/** Accepted `--rate` values in bulletins per second. */
const BULLETIN_RATES: IntegerRange = { min: 1, max: 1_000_000 };
/** Accepted `--rate` values in bytes per second. */
const BYTE_RATES: IntegerRange = { min: 1, max: 100 * 1000 ** 3 };

/**
 * Parses a rate: a whole number of bulletins per second (`100`), or of bytes
 * per second when it has a unit as in {@linkcode parseSize} (`500KB`,
 * `2MiB`, `100B`).
 *
 * @param name The option's long name, for the error message.
 * @param text The value given.
 * @returns The rate.
 * @throws {UsageError} When `text` is not a rate in range.
 */
export function parseRate(name: string, text: string): Rate {
  const parts = sizeParts(text);
  const range = parts?.unit ? BYTE_RATES : BULLETIN_RATES;
  if (parts && parts.bytes >= range.min && parts.bytes <= range.max) {
    return {
      unit: parts.unit ? "bytes" : "bulletins",
      perSecond: parts.bytes,
    };
  }
  throw new UsageError(
    `Invalid --${name} "${text}": expected bulletins per second from ${BULLETIN_RATES.min} to ${BULLETIN_RATES.max}, or bytes per second from ${
      formatSize(BYTE_RATES.min)
    } to ${formatSize(BYTE_RATES.max)} (e.g. 100, 500KB or 2MiB)`,
  );
}

// Characters a receiver name must not contain: control (Cc), format (Cf,
// e.g. bidirectional overrides), line and paragraph separators.
const NAME_UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

function codePoint(char: string): string {
  return `U+${
    char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
  }`;
}

/**
 * What is wrong with a receiver name, or `undefined` when it is valid:
 * 1-64 bytes of well-formed UTF-8, no control or format characters, no
 * space at either end, no comma (commas separate names in `--receivers`).
 */
function nameProblem(name: string): string | undefined {
  if (name === "") return "empty";
  if (!name.isWellFormed()) {
    const lone = [...name].find((char) => !char.isWellFormed())!;
    return `lone surrogate ${codePoint(lone)}`;
  }
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_NAME_BYTES) {
    return `${bytes} bytes (at most ${MAX_NAME_BYTES} in UTF-8)`;
  }
  const unsafe = NAME_UNSAFE.exec(name)?.[0];
  if (unsafe !== undefined) {
    return `control or format character ${codePoint(unsafe)}`;
  }
  if (/^\s|\s$/u.test(name)) return "space at the start or end";
  if (name.includes(",")) return "comma in the name";
  return undefined;
}

/**
 * Parses `--receivers`: comma-separated names, each valid as a `--name`,
 * none twice, at most {@linkcode MAX_RECEIVERS}.
 */
function parseReceivers(text: string): string[] {
  const names = text.split(",");
  const fail = (problem: string) =>
    new UsageError(`Invalid --receivers "${text}": ${problem}`);
  if (names.length > MAX_RECEIVERS) {
    throw fail(`${names.length} names (at most ${MAX_RECEIVERS})`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (name === "") throw fail("empty name");
    const problem = nameProblem(name);
    if (problem !== undefined) throw fail(`name "${name}": ${problem}`);
    if (seen.has(name)) throw fail(`name "${name}" given twice`);
    seen.add(name);
  }
  return names;
}

function nonEmpty(
  name: string,
  value: string | boolean | string[] | undefined,
) {
  if (value === "") throw new UsageError(`Invalid --${name} "": empty`);
  return value as string | undefined;
}

function common(values: Values) {
  const group = parseGroup((values.group as string) ?? DEFAULTS.group);
  const port = values.port === undefined
    ? DEFAULTS.port
    : parseInteger("port", values.port as string, { min: 1, max: 65535 });
  const iface = (values.interface as string | undefined) ?? DEFAULTS.interface;
  if (iface === "") throw new UsageError(`Invalid --interface "": empty`);
  return {
    group,
    port,
    interface: iface,
    json: values.json === true,
    io: parseIoChoice(values.io as string | undefined),
  };
}

/**
 * Parses `--io`.
 *
 * @param text The value given, if any.
 * @returns The choice (`auto` when none was given).
 * @throws {UsageError} When it is not one of {@linkcode IO_CHOICES}.
 */
export function parseIoChoice(text: string | undefined): IoChoice {
  if (text === undefined) return "auto";
  const choice = IO_CHOICES.find((c) => c === text);
  if (choice === undefined) {
    throw new UsageError(
      `Invalid --io "${text}": expected ${IO_CHOICES.join(", ")}`,
    );
  }
  return choice;
}

function sourceAddress(text: string, group: Group, io: IoChoice): string {
  if (io === "deno") {
    throw new UsageError(
      `Option "--source" needs the native path (--io native or auto): the runtime's sockets cannot join a source-specific group`,
    );
  }
  const family = addressFamily(text);
  const address = family === 4
    ? text
    : family === 6
    ? normalizeIPv6(text)
    : undefined;
  if (address === undefined) {
    throw new UsageError(
      `Invalid --source "${text}": expected an IPv${group.family} unicast address`,
    );
  }
  if (family !== group.family) {
    throw new UsageError(
      `Invalid --source "${text}": an IPv${family} address for an IPv${group.family} group`,
    );
  }
  const multicast = family === 4
    ? Number(text.split(".")[0]) >= 224
    : address.startsWith("ff");
  if (multicast || address === "0.0.0.0" || address === "::") {
    throw new UsageError(
      `Invalid --source "${text}": expected a unicast address, the sender's`,
    );
  }
  return address;
}

/** Accepted `--max-size` values of both tools. */
const MAX_SIZES: IntegerRange = { min: 1, max: 0xffff_ffff };

function maxSize(values: Values): number {
  return values["max-size"] === undefined
    ? RELIABLE_DEFAULTS.maxSize
    : parseSize("max-size", values["max-size"] as string, MAX_SIZES);
}

function reliableSendOptions(values: Values): ReliableSendOptions {
  if (values.lines && values.message !== undefined) {
    throw new UsageError(
      `Options "--message" and "--lines" exclude each other`,
    );
  }
  if (values.expect !== undefined && values.receivers !== undefined) {
    throw new UsageError(
      `Options "--expect" and "--receivers" exclude each other`,
    );
  }
  const reliable: ReliableSendOptions = {
    lines: values.lines === true,
    deadlineMs: values.deadline === undefined
      ? RELIABLE_DEFAULTS.deadlineSeconds * 1000
      : parseSeconds("deadline", values.deadline as string),
    bufferBytes: RELIABLE_DEFAULTS.bufferBytes,
    window: RELIABLE_DEFAULTS.window,
    dropSlow: values["drop-slow"] === true,
    maxSize: RELIABLE_DEFAULTS.maxSize,
    mtu: RELIABLE_DEFAULTS.mtu,
  };
  if (values.standby === true) {
    reliable.standby = true;
    reliable.takeoverMs = DEFAULT_TAKEOVER_MS;
  }
  if (values.takeover !== undefined) {
    if (!reliable.standby) {
      throw new UsageError(`Option "--takeover" needs --standby`);
    }
    reliable.takeoverMs = parseSeconds("takeover", values.takeover as string);
    if (reliable.takeoverMs < 100) {
      throw new UsageError(
        `Invalid --takeover "${values.takeover}": at least 0.1 seconds (the primary's heartbeats come every 50 ms)`,
      );
    }
  }
  if (reliable.standby && values.journal !== undefined) {
    throw new UsageError(
      `Options "--standby" and "--journal" exclude each other`,
    );
  }
  if (values.receivers !== undefined) {
    reliable.receivers = parseReceivers(values.receivers as string);
  }
  if (values.rate !== undefined) {
    reliable.rate = parseRate("rate", values.rate as string);
  }
  if (values["repair-rate"] !== undefined) {
    reliable.repairRate = parseRate(
      "repair-rate",
      values["repair-rate"] as string,
    );
  }
  if (values.buffer !== undefined) {
    reliable.bufferBytes = parseSize("buffer", values.buffer as string, {
      min: 64 * 1024,
      max: 1024 ** 3,
    });
  }
  if (values.window !== undefined) {
    reliable.window = parseInteger("window", values.window as string, {
      min: 16,
      max: 1_000_000,
    });
  }
  reliable.maxSize = maxSize(values);
  if (values.mtu !== undefined) {
    reliable.mtu = parseInteger("mtu", values.mtu as string, {
      min: 128,
      max: MAX_PAYLOAD,
    });
  }
  const journal = nonEmpty("journal", values.journal);
  if (journal !== undefined) reliable.journal = journal;
  return reliable;
}

/**
 * Parses the arguments of `mcast-send`.
 *
 * @param args The command-line arguments, without the program name.
 * @returns Help, version, or validated options.
 * @throws {UsageError} On any invalid option or value.
 */
export function parseSendArgs(args: string[]): Command<SendOptions> {
  const { values, order } = parse(args, SEND);
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  const generate = generateKey(values, order);
  if (generate) return generate;
  checkKeyOnly(values, order);
  if (!values.reliable) {
    const first = order.find((name) => RELIABLE_ONLY.has(name));
    if (first !== undefined) {
      throw new UsageError(`Option "--${first}" needs --reliable`);
    }
  }
  if (values.message !== undefined && values.file !== undefined) {
    throw new UsageError(`Options "--message" and "--file" exclude each other`);
  }
  const options: SendOptions = {
    ...common(values),
    payload: values.file === "-" || (values.lines && values.file === undefined)
      ? { kind: "stdin" }
      : values.file !== undefined
      ? { kind: "file", path: values.file as string }
      : { kind: "text", text: (values.message as string) ?? DEFAULTS.message },
    ttl: values.ttl === undefined
      ? DEFAULTS.ttl
      : parseInteger("ttl", values.ttl as string, { min: 0, max: 255 }),
    waitMs: values.wait === undefined
      ? DEFAULTS.waitSeconds * 1000
      : parseSeconds("wait", values.wait as string),
  };
  if (values.file === "") throw new UsageError(`Invalid --file "": empty`);
  if (
    options.group.family === 6 && options.ttl !== 1 && options.io === "deno"
  ) {
    throw new UsageError(
      `Invalid --ttl "${options.ttl}" for an IPv6 group with --io deno: the runtime cannot set the hop limit, which stays 1`,
    );
  }
  if (values.reliable) options.reliable = reliableSendOptions(values);
  const keys = keyOptions(values);
  if (keys) options.keys = keys;
  if (values.expect !== undefined) {
    options.expect = parseInteger("expect", values.expect as string, {
      min: 1,
      max: options.reliable ? MAX_RECEIVERS : 1_000_000,
    });
  }
  if (options.payload.kind === "text") {
    const size = new TextEncoder().encode(options.payload.text).length;
    checkPayloadSize("--message", size, options.reliable?.maxSize);
  }
  return { action: "run", options };
}

/**
 * Parses the arguments of `mcast-recv`.
 *
 * @param args The command-line arguments, without the program name.
 * @returns Help, version, or validated options.
 * @throws {UsageError} On any invalid option or value.
 */
export function parseRecvArgs(args: string[]): Command<RecvOptions> {
  const { values, order } = parse(args, RECV);
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  checkKeyOnly(values, order);
  if (values["no-ack"] && values.ack !== undefined) {
    throw new UsageError(`Options "--ack" and "--no-ack" exclude each other`);
  }
  const ack = values["no-ack"]
    ? null
    : new TextEncoder().encode((values.ack as string) ?? DEFAULTS.ack);
  if (ack) checkPayloadSize("--ack", ack.length);
  const options: RecvOptions = {
    ...common(values),
    ack,
    fromStart: values["from-start"] === true,
    maxSize: RELIABLE_DEFAULTS.maxSize,
  };
  if (values.count !== undefined) {
    options.count = parseInteger("count", values.count as string, {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
    });
  }
  if (values.name !== undefined) {
    const name = values.name as string;
    const problem = nameProblem(name);
    if (problem !== undefined) {
      throw new UsageError(`Invalid --name "${name}": ${problem}`);
    }
    options.name = name;
  }
  const output = nonEmpty("output", values.output);
  if (output !== undefined) options.output = output;
  const state = nonEmpty("state", values.state);
  if (state !== undefined) options.state = state;
  options.maxSize = maxSize(values);
  if (values["max-sessions"] !== undefined) {
    options.maxSessions = parseInteger(
      "max-sessions",
      values["max-sessions"] as string,
      { min: 1, max: MAX_STATE_SESSIONS },
    );
  }
  const source = nonEmpty("source", values.source);
  if (source !== undefined) {
    options.source = sourceAddress(source, options.group, options.io);
  }
  const keys = keyOptions(values);
  if (keys) options.keys = keys;
  return { action: "run", options };
}

/** `--gen-key PATH` or `--gen-sign-key PATH`, given alone. */
function generateKey(
  values: Values,
  order: string[],
): Command<never> | undefined {
  const which = order.find((name) => name.startsWith("gen-"));
  if (which === undefined) return undefined;
  const other = order.find((name) => name !== which);
  if (other !== undefined) {
    throw new UsageError(
      `Option "--${which}" is used alone: it writes a key file and exits (not with "--${other}")`,
    );
  }
  const path = nonEmpty(which, values[which])!;
  return {
    action: "gen-key",
    path,
    kind: which === "gen-key" ? "group" : "ed25519",
  };
}

function checkKeyOnly(values: Values, order: string[]): void {
  if (values["key-file"] !== undefined) return;
  const first = order.find((name) => KEY_ONLY.has(name));
  if (first !== undefined) {
    throw new UsageError(`Option "--${first}" needs --key-file`);
  }
}

function keyOptions(values: Values): KeyOptions | undefined {
  const keyFile = nonEmpty("key-file", values["key-file"]);
  if (keyFile === undefined) return undefined;
  const keys: KeyOptions = {
    keyFile,
    encrypt: values.encrypt === true,
    trust: [],
    allowPlain: values["allow-plain"] === true,
    maxSkewMs: DEFAULT_MAX_SKEW_MS,
  };
  const signKey = nonEmpty("sign-key", values["sign-key"]);
  if (signKey !== undefined) keys.signKey = signKey;
  for (const trust of (values.trust as string[] | undefined) ?? []) {
    keys.trust.push(nonEmpty("trust", trust)!);
  }
  if (values["max-skew"] !== undefined) {
    const text = values["max-skew"] as string;
    try {
      keys.maxSkewMs = parseSeconds("max-skew", text);
    } catch {
      keys.maxSkewMs = 0;
    }
    if (keys.maxSkewMs < 1000) {
      throw new UsageError(
        `Invalid --max-skew "${text}": expected seconds from 1 to 86400`,
      );
    }
  }
  return keys;
}

/**
 * Checks that a payload fits one UDP datagram or, in reliable mode, one
 * bulletin.
 *
 * @param what Where the payload came from, for the error message.
 * @param size The payload's size in bytes.
 * @param maxSize The reliable mode's `--max-size`; without it the limit is
 * {@linkcode MAX_PAYLOAD}.
 * @throws {UsageError} When it is larger than the limit.
 */
export function checkPayloadSize(
  what: string,
  size: number,
  maxSize?: number,
): void {
  if (maxSize !== undefined) {
    if (size > maxSize) {
      throw new UsageError(
        `Payload from ${what} is too large: ${size} bytes (--max-size is ${maxSize})`,
      );
    }
  } else if (size > MAX_PAYLOAD) {
    throw new UsageError(
      `Payload from ${what} is too large: ${size} bytes (one datagram carries at most ${MAX_PAYLOAD})`,
    );
  }
}
