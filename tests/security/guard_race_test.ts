/**
 * The frame guard's idle signature racing the first transmission of the
 * datagram it signs (`lib/security/guard.ts`): a crypto backend whose
 * encryption waits for the signature forces the order in which the race
 * lost the first transmission (its trailer had no room for the signature
 * that arrived meanwhile).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type AeadKey,
  type CryptoBackend,
  type Signer,
  WEB_CRYPTO,
} from "../../lib/security/crypto.ts";
import { GuardedEndpoint } from "../../lib/security/guard.ts";
import { encodeFrame, FLAGS } from "../../lib/wire/frame.ts";
import { MemoryNetwork } from "../../lib/net/memory_net.ts";
import { emptyDrops } from "../../lib/reliable/stats.ts";
import { groupKey, signingKey, within } from "../_fakes.ts";
import { gate } from "../_wait.ts";

Deno.test("guard: a DATA frame signed by the idle signature while its records are encrypted is still sent, with the trailer its flags announce", async () => {
  // The signer waits until the first transmission is being encrypted; the
  // encryption ends only once the signature is made.
  const encrypting = gate();
  const signed = gate();
  const backend: CryptoBackend = {
    ...WEB_CRYPTO,
    async aeadKey(raw: Uint8Array): Promise<AeadKey> {
      const key = await WEB_CRYPTO.aeadKey(raw);
      return {
        seal: (nonce, aad, plain) => key.seal(nonce, aad, plain),
        open: (nonce, aad, sealed) => key.open(nonce, aad, sealed),
        openInto: (nonce, aad, sealed, into) =>
          key.openInto(nonce, aad, sealed, into),
        async sealInto(nonce, aad, plain, into): Promise<void> {
          // The backend reads its inputs at once, as the guard requires.
          const done = key.sealInto(nonce, aad, plain, into);
          encrypting.open();
          await signed.promise;
          await done;
        },
      };
    },
    async signer(key): Promise<Signer> {
      const signer = await WEB_CRYPTO.signer(key);
      return {
        async sign(message: Uint8Array): Promise<Uint8Array> {
          await encrypting.promise;
          const signature = await signer.sign(message);
          signed.open();
          return signature;
        },
      };
    },
  };
  const network = new MemoryNetwork();
  const sink = network.open({ address: "127.0.0.1", port: 5000 });
  const guard = new GuardedEndpoint(network.open({ address: "127.0.0.1" }), {
    key: groupKey(),
    encrypt: true,
    signingKey: await signingKey(),
    dropped: emptyDrops(),
    crypto: backend,
  });
  try {
    const frame = encodeFrame({
      type: "data",
      session: "0123456789abcdef",
      seq: 1,
      retransmit: false,
      timestamp: 1_700_000_000_000_000,
      low: 1,
      records: [{
        bulletin: 1,
        total: 5,
        offset: 0,
        data: new TextEncoder().encode("hello"),
      }],
    });
    await guard.send(frame, sink.local);
    const first = (await within(5_000, sink.receive()))!.payload;
    const repeat = (await within(5_000, sink.receive()))!.payload;
    // The first transmission: encrypted and chained, as its flags said when
    // it was sealed; 16 + 32 + 24 bytes of trailer.
    assert.equal(first[6], FLAGS.encrypted | FLAGS.chained);
    assert.equal(first[7], 72);
    assert.equal(first.length, frame.length + 72);
    // The idle signature's repeat: a signed retransmission.
    assert.equal(
      repeat[6],
      FLAGS.retransmit | FLAGS.encrypted | FLAGS.chained | FLAGS.signed,
    );
    assert.equal(repeat[7], 136);
    assert.equal(repeat.length, frame.length + 136);
    // The same records under the same nonce.
    assert.deepEqual(repeat.subarray(40, 67), first.subarray(40, 67));
  } finally {
    guard.close();
    sink.close();
    network.close();
  }
});
