/**
 * `nats://` URLs of `mcast-bridge`'s broker legs, read without loading the
 * NATS client (`nats_pipe.ts` does that, when a leg is opened):
 * `nats://HOST:PORT/SUBJECT` for core NATS, `?stream=NAME` for JetStream,
 * `&durable=NAME` for the far side's consumer.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** Port of a `nats://` URL without one. */
export const DEFAULT_NATS_PORT = 4222;

/** Where a NATS pipe leads, from its URL. */
export interface NatsTarget {
  /** The server, `HOST:PORT` (`[ADDRESS]:PORT` for IPv6). */
  server: string;
  /** The subject the datagrams are published on (no wildcards). */
  subject: string;
  /** The JetStream stream, when the pipe is durable. */
  stream?: string;
  /** The far side's durable consumer, when the URL names one. */
  durable?: string;
}

/** Stream and consumer names: no dots, wildcards, white space or slashes. */
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** A subject token: no wildcards, no white space. */
const TOKEN_PATTERN = /^[^\s.*>]+$/;

/**
 * Reads a `nats://HOST:PORT/SUBJECT[?stream=NAME][&durable=NAME]` URL.
 *
 * @param url The URL.
 * @returns Where it leads.
 * @throws {UsageError} When it is not such a URL.
 *
 * @example A JetStream pipe
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNatsUrl } from "./nats_url.ts";
 * assert.deepEqual(
 *   parseNatsUrl("nats://127.0.0.1:4222/mcast.news?stream=NEWS"),
 *   { server: "127.0.0.1:4222", subject: "mcast.news", stream: "NEWS" },
 * );
 * ```
 */
export function parseNatsUrl(url: string): NatsTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "nats:") {
    throw new UsageError(`not a nats:// URL: ${JSON.stringify(url)}`);
  }
  if (parsed.username !== "" || parsed.password !== "" || parsed.hash !== "") {
    throw new UsageError(
      `a nats:// URL takes no user, password or fragment: ${
        JSON.stringify(url)
      }`,
    );
  }
  if (parsed.hostname === "") {
    throw new UsageError(`no broker host in ${JSON.stringify(url)}`);
  }
  const port = parsed.port === "" ? DEFAULT_NATS_PORT : Number(parsed.port);
  const subject = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (subject === "") {
    throw new UsageError(
      `no subject in ${JSON.stringify(url)} (nats://HOST:PORT/SUBJECT)`,
    );
  }
  checkSubject(subject);
  const target: NatsTarget = { server: `${parsed.hostname}:${port}`, subject };
  for (const [key, value] of parsed.searchParams) {
    if (key === "stream" || key === "durable") {
      checkName(key, value);
      target[key] = value;
    } else {
      throw new UsageError(
        `unknown parameter ${JSON.stringify(key)} in ${
          JSON.stringify(url)
        } (stream, durable)`,
      );
    }
  }
  return target;
}

function checkSubject(subject: string): void {
  if (!subject.split(".").every((token) => TOKEN_PATTERN.test(token))) {
    throw new UsageError(
      `bad NATS subject ${
        JSON.stringify(subject)
      }: dot-separated tokens, no wildcards or spaces`,
    );
  }
}

/**
 * Checks a stream or consumer name: 1 to 64 letters, digits, `-` or `_`.
 *
 * @param what `stream` or `durable`, for the message.
 * @param name The name.
 * @throws {UsageError} When it is not such a name.
 */
export function checkName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new UsageError(
      `bad ${what} name ${
        JSON.stringify(name)
      }: 1 to 64 letters, digits, "-" or "_"`,
    );
  }
}

/**
 * The far side's consumer name for a bridge's `--name`: every character a
 * consumer name cannot hold becomes `_`, and it is cut to 64 characters.
 *
 * @param name The bridge's name.
 * @returns A consumer name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { durableName } from "./nats_url.ts";
 * assert.equal(durableName("site-b.bridge 1"), "site-b_bridge_1");
 * ```
 */
export function durableName(name: string): string {
  return (name.replace(/[^A-Za-z0-9_-]/g, "_") || "_").slice(0, 64);
}
