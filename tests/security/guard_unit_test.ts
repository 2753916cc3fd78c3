/**
 * Unit tests of the frame guard's sizes and lifecycle (`lib/security/guard.ts`):
 * {@linkcode GuardedEndpoint.overhead}, {@linkcode trailerSize}, and a
 * guard that is created and closed without being used. The security claims
 * are proven end to end in `guard_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FLAGS, FRAME_TYPES } from "../../lib/wire/frame.ts";
import {
  CHAIN_SIZE,
  GCM_TAG_SIZE,
  GuardedEndpoint,
  type GuardOptions,
  MAC_SIZE,
  SIGNATURE_SIZE,
  TIME_SIZE,
  trailerSize,
} from "../../lib/security/guard.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { groupKey, signingKey, within } from "../_fakes.ts";
import { emptyDrops } from "../../lib/reliable/stats.ts";

const GROUP = "239.42.10.1";
const PORT = 17950;

Deno.test("the trailer's field sizes are those of docs/protocol.md", () => {
  assert.deepEqual(
    [TIME_SIZE, MAC_SIZE, GCM_TAG_SIZE, CHAIN_SIZE, SIGNATURE_SIZE],
    [8, 16, 16, 32, 64],
  );
});

Deno.test("GuardedEndpoint.overhead: 24, +16 to encrypt, +96 to sign", async () => {
  const network = new MemoryNetwork();
  const key = groupKey();
  const signer = await signingKey();
  const cases: [Omit<GuardOptions, "key" | "dropped">, number][] = [
    [{}, 24],
    [{ encrypt: true }, 40],
    [{ signingKey: signer }, 120],
    [{ encrypt: true, signingKey: signer }, 136],
    // What a receiver checks does not change what it adds.
    [{ encrypt: false, trust: [signer.publicKey], allowPlain: true }, 24],
  ];
  try {
    for (const [options, overhead] of cases) {
      const guard = new GuardedEndpoint(
        network.open({ address: "127.0.0.1" }),
        { key, dropped: emptyDrops(), ...options },
      );
      try {
        assert.equal(guard.overhead, overhead, JSON.stringify(options));
        // The largest trailer it can add: that of a DATA frame with every
        // flag it may set.
        const flags = (options.encrypt ? FLAGS.encrypted : 0) |
          (options.signingKey ? FLAGS.chained | FLAGS.signed : 0);
        assert.equal(trailerSize(flags, FRAME_TYPES.data), overhead);
      } finally {
        guard.close();
      }
    }
  } finally {
    network.close();
  }
});

Deno.test("trailerSize of DATA: 24 plus 16 encrypted, 32 chained, 64 signed", () => {
  const expected = new Map<number, number>();
  for (let flags = 0; flags < 0x100; flags++) {
    let size = 24;
    if (flags & 0x08) size += 16;
    if (flags & 0x10) size += 32;
    if (flags & 0x20) size += 64;
    expected.set(flags, size);
  }
  // Each combination of the three, with the other bits clear.
  assert.equal(trailerSize(0, FRAME_TYPES.data), 24);
  assert.equal(trailerSize(FLAGS.encrypted, FRAME_TYPES.data), 40);
  assert.equal(trailerSize(FLAGS.chained, FRAME_TYPES.data), 56);
  assert.equal(trailerSize(FLAGS.signed, FRAME_TYPES.data), 88);
  assert.equal(
    trailerSize(FLAGS.encrypted | FLAGS.chained, FRAME_TYPES.data),
    72,
  );
  assert.equal(
    trailerSize(FLAGS.encrypted | FLAGS.signed, FRAME_TYPES.data),
    104,
  );
  assert.equal(
    trailerSize(FLAGS.chained | FLAGS.signed, FRAME_TYPES.data),
    120,
  );
  assert.equal(
    trailerSize(
      FLAGS.encrypted | FLAGS.chained | FLAGS.signed,
      FRAME_TYPES.data,
    ),
    136,
  );
  // The other bits (retransmit, final, fromStart, unused) add nothing.
  for (const [flags, size] of expected) {
    assert.equal(trailerSize(flags, FRAME_TYPES.data), size, `flags ${flags}`);
  }
});

Deno.test("trailerSize of every other type is 24, whatever the flags", () => {
  const types = [
    ...Object.values(FRAME_TYPES).filter((t) => t !== FRAME_TYPES.data),
    // Not frame types at all.
    0,
    8,
    255,
  ];
  for (const type of types) {
    for (let flags = 0; flags < 0x100; flags++) {
      assert.equal(trailerSize(flags, type), 24, `type ${type} flags ${flags}`);
    }
  }
});

Deno.test("a GuardedEndpoint created and closed at once leaves nothing pending", async () => {
  const network = new MemoryNetwork();
  const signer = await signingKey();
  try {
    for (
      const options of [
        {},
        { encrypt: true, signingKey: signer },
        { trust: [signer.publicKey] },
      ]
    ) {
      const inner = network.open({ address: "127.0.0.1" });
      const guard = new GuardedEndpoint(inner, {
        key: groupKey(),
        dropped: emptyDrops(),
        ...options,
      });
      assert.equal(inner.closed, false);
      guard.close();
      // Nothing was queued to send: the socket is closed at once.
      assert.equal(inner.closed, true);
      guard.close();
      // A closed guard receives nothing, and sends nothing.
      assert.equal(await within(1000, guard.receive()), null);
      assert.equal(inner.sent, 0);
    }
    assert.equal(network.endpoints, 0);
  } finally {
    network.close();
  }
});

Deno.test("a GuardedEndpoint closed while a receive waits resolves it with null", async () => {
  const network = new MemoryNetwork();
  const inner = network.open({ address: GROUP, port: PORT });
  inner.join(GROUP);
  const guard = new GuardedEndpoint(inner, {
    key: groupKey(),
    dropped: emptyDrops(),
  });
  try {
    const waiting = guard.receive();
    guard.close();
    assert.equal(await within(1000, waiting), null);
    assert.equal(inner.closed, true);
  } finally {
    guard.close();
    network.close();
  }
});
