/**
 * Prints every message of a JetStream stream, one per line, as base64 of
 * its payload: `deno run --allow-net _nats_dump.ts nats://HOST:PORT STREAM`.
 * The broker tests run it inside a namespace to see what the broker holds.
 *
 * @module
 */

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Buffer } from "node:buffer";

const [url, stream] = Deno.args;
const nc = await connect({ servers: url!.replace(/^nats:\/\//, "") });
try {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream!);
  const lines: string[] = [];
  for (
    let seq = state.first_seq;
    seq <= state.last_seq && state.messages > 0;
    seq++
  ) {
    const message = await jsm.streams.getMessage(stream!, { seq });
    lines.push(Buffer.from(message?.data ?? []).toString("base64"));
  }
  console.log(lines.join("\n"));
} finally {
  await nc.close();
}
