/**
 * Command-line parsing and validation for `mcast-send` and `mcast-recv`.
 * Pure: turns an argument list into validated options or a
 * {@linkcode UsageError}; no I/O happens here.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Group, parseGroup } from "./address.ts";
import { UsageError } from "./errors.ts";

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
}

/** Where the sender's payload comes from. */
export type PayloadSource =
  | { kind: "text"; text: string }
  | { kind: "file"; path: string }
  | { kind: "stdin" };

/** Validated options of `mcast-send`. */
export interface SendOptions extends CommonOptions {
  /** The payload: `--message`, `--file PATH` or `--file -`. */
  payload: PayloadSource;
  /** Multicast TTL (IPv4) or hop limit (IPv6), 0-255. */
  ttl: number;
  /** How long to wait for acknowledgements, in milliseconds. */
  waitMs: number;
  /** Stop after this many acknowledgements; fail if fewer arrive. */
  expect?: number;
}

/** Validated options of `mcast-recv`. */
export interface RecvOptions extends CommonOptions {
  /** Exit after this many messages. */
  count?: number;
  /** The acknowledgement payload, or `null` for `--no-ack`. */
  ack: Uint8Array | null;
}

/** What the command line asks for. */
export type Command<T> =
  | { action: "help" }
  | { action: "version" }
  | { action: "run"; options: T };

const COMMON = {
  group: { type: "string", short: "g" },
  port: { type: "string", short: "p" },
  interface: { type: "string", short: "i" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

const SEND = {
  ...COMMON,
  message: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  ttl: { type: "string", short: "t" },
  wait: { type: "string", short: "w" },
  expect: { type: "string", short: "e" },
} as const;

const RECV = {
  ...COMMON,
  count: { type: "string", short: "c" },
  ack: { type: "string" },
  "no-ack": { type: "boolean" },
} as const;

interface ParseConfig {
  [name: string]: { type: "string" | "boolean"; short?: string };
}

function parse(
  args: string[],
  options: ParseConfig,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw translateParseError(error, options);
  }
}

function translateParseError(error: unknown, options: ParseConfig): Error {
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

function common(values: Record<string, string | boolean | undefined>) {
  const group = parseGroup((values.group as string) ?? DEFAULTS.group);
  const port = values.port === undefined
    ? DEFAULTS.port
    : parseInteger("port", values.port as string, { min: 1, max: 65535 });
  const iface = (values.interface as string | undefined) ?? DEFAULTS.interface;
  if (iface === "") throw new UsageError(`Invalid --interface "": empty`);
  return { group, port, interface: iface, json: values.json === true };
}

/**
 * Parses the arguments of `mcast-send`.
 *
 * @param args The command-line arguments, without the program name.
 * @returns Help, version, or validated options.
 * @throws {UsageError} On any invalid option or value.
 */
export function parseSendArgs(args: string[]): Command<SendOptions> {
  const values = parse(args, SEND);
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  if (values.message !== undefined && values.file !== undefined) {
    throw new UsageError(`Options "--message" and "--file" exclude each other`);
  }
  const options: SendOptions = {
    ...common(values),
    payload: values.file === "-"
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
  if (options.group.family === 6 && options.ttl !== 1) {
    throw new UsageError(
      `Invalid --ttl "${options.ttl}" for an IPv6 group: the runtime cannot set the hop limit, which stays 1`,
    );
  }
  if (values.expect !== undefined) {
    options.expect = parseInteger("expect", values.expect as string, {
      min: 1,
      max: 1_000_000,
    });
  }
  if (options.payload.kind === "text") {
    const size = new TextEncoder().encode(options.payload.text).length;
    checkPayloadSize("--message", size);
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
  const values = parse(args, RECV);
  if (values.help) return { action: "help" };
  if (values.version) return { action: "version" };
  if (values["no-ack"] && values.ack !== undefined) {
    throw new UsageError(`Options "--ack" and "--no-ack" exclude each other`);
  }
  const ack = values["no-ack"]
    ? null
    : new TextEncoder().encode((values.ack as string) ?? DEFAULTS.ack);
  if (ack) checkPayloadSize("--ack", ack.length);
  const options: RecvOptions = { ...common(values), ack };
  if (values.count !== undefined) {
    options.count = parseInteger("count", values.count as string, {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
    });
  }
  return { action: "run", options };
}

/**
 * Checks that a payload fits one UDP datagram.
 *
 * @param what Where the payload came from, for the error message.
 * @param size The payload's size in bytes.
 * @throws {UsageError} When it is larger than {@linkcode MAX_PAYLOAD}.
 */
export function checkPayloadSize(what: string, size: number): void {
  if (size > MAX_PAYLOAD) {
    throw new UsageError(
      `Payload from ${what} is too large: ${size} bytes (one datagram carries at most ${MAX_PAYLOAD})`,
    );
  }
}
