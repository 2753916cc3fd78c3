/**
 * `nats://` URLs of the bridge's broker legs, and consumer names from
 * bridge names.
 *
 * @module
 */

import assert from "node:assert/strict";
import { durableName, parseNatsUrl } from "../../lib/bridge/nats_url.ts";
import { UsageError } from "../../lib/errors.ts";

Deno.test("parseNatsUrl: server, subject, stream and consumer", () => {
  assert.deepEqual(parseNatsUrl("nats://127.0.0.1:4333/mcast.news"), {
    server: "127.0.0.1:4333",
    subject: "mcast.news",
  });
  assert.deepEqual(parseNatsUrl("nats://broker/a?stream=S&durable=far-1"), {
    server: "broker:4222",
    subject: "a",
    stream: "S",
    durable: "far-1",
  });
  assert.deepEqual(parseNatsUrl("nats://[::1]:5000/x.y"), {
    server: "[::1]:5000",
    subject: "x.y",
  });
  for (
    const [url, message] of [
      ["udp://127.0.0.1:1/a", /not a nats:\/\/ URL/],
      ["nats://127.0.0.1:4222", /no subject/],
      ["nats://127.0.0.1:4222/", /no subject/],
      ["nats://127.0.0.1:4222/a.*", /bad NATS subject "a\.\*"/],
      ["nats://127.0.0.1:4222/a..b", /bad NATS subject/],
      ["nats://127.0.0.1:4222/a?stream=a.b", /bad stream name "a\.b"/],
      ["nats://127.0.0.1:4222/a?durable=", /bad durable name ""/],
      ["nats://127.0.0.1:4222/a?ack=1", /unknown parameter "ack"/],
      ["nats://u:p@127.0.0.1:4222/a", /no user, password/],
      ["not a url", /not a URL/],
    ] as const
  ) {
    assert.throws(
      () => parseNatsUrl(url),
      (error: unknown) =>
        error instanceof UsageError && message.test(error.message),
      url,
    );
  }
});

Deno.test("durableName: a bridge name as a consumer name", () => {
  assert.equal(durableName("far-1"), "far-1");
  assert.equal(durableName("site b.desk*1>"), "site_b_desk_1_");
  assert.equal(durableName(""), "_");
  assert.equal(durableName("x".repeat(80)), "x".repeat(64));
});
