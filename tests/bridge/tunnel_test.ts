import assert from "node:assert/strict";
import {
  decodeTunnelFrame,
  encodeTunnelFrame,
  TunnelAuth,
  TunnelSink,
  TunnelSource,
} from "../../lib/bridge/tunnel.ts";
import type { PipeDatagram } from "../../lib/bridge/pipe.ts";
import {
  type Datagram,
  type DatagramEndpoint,
  openUnicastSocket,
} from "../../lib/net/socket.ts";
import type { Peer } from "../../lib/net/address.ts";

const KEY = { bytes: new Uint8Array(32).fill(7) };
const LINK = "00112233445566ff";

Deno.test("tunnel: frames encode and decode", () => {
  const datum = {
    type: "datum" as const,
    link: LINK,
    seq: 5,
    low: 3,
    hops: 7,
    id: "0123456789abcdef:42",
    bytes: new Uint8Array([1, 2, 3]),
  };
  const encoded = encodeTunnelFrame(datum);
  assert.deepEqual([...encoded.subarray(0, 8)], [
    0x4d,
    0x43,
    0x54,
    0x4e,
    1,
    1,
    7,
    0,
  ]);
  assert.deepEqual(decodeTunnelFrame(encoded), datum);
  const held = {
    type: "held" as const,
    link: LINK,
    seq: 9,
    ranges: [{ first: 11, last: 12 }],
  };
  assert.deepEqual(decodeTunnelFrame(encodeTunnelFrame(held)), held);
  const report = {
    type: "report" as const,
    link: LINK,
    frame: new Uint8Array([1, 2]),
  };
  assert.deepEqual(decodeTunnelFrame(encodeTunnelFrame(report)), report);
  assert.equal(decodeTunnelFrame(encoded.subarray(0, 20)), undefined);
  const other = encoded.slice();
  other[5] = 9;
  assert.equal(decodeTunnelFrame(other), undefined);
});

Deno.test("tunnel: frames are authenticated with the group key", async () => {
  let now = 1_700_000_000_000_000;
  const auth = new TunnelAuth(KEY, { nowMicros: () => now });
  const frame = encodeTunnelFrame({
    type: "held",
    link: LINK,
    seq: 1,
    ranges: [],
  });
  const sealed = await auth.seal(frame);
  assert.equal(sealed.length, frame.length + 24);
  assert.equal(sealed[7], 24);
  assert.deepEqual(await auth.open(sealed), frame);
  const tampered = sealed.slice();
  tampered[20]! ^= 1;
  assert.equal(await auth.open(tampered), undefined);
  const otherKey = new TunnelAuth({ bytes: new Uint8Array(32) }, {
    nowMicros: () => now,
  });
  assert.equal(await otherKey.open(sealed), undefined);
  assert.equal(await auth.open(frame), undefined);
  now += 11_000_000;
  assert.equal(await auth.open(sealed), undefined, "stale");
});

/** A socket that drops the first `drop` datagrams it is asked to send. */
class Lossy implements DatagramEndpoint {
  readonly #inner: DatagramEndpoint;
  #drop: number;
  constructor(inner: DatagramEndpoint, drop: number) {
    this.#inner = inner;
    this.#drop = drop;
  }
  get local(): Peer {
    return this.#inner.local;
  }
  send(payload: Uint8Array, to: Peer): Promise<void> {
    if (this.#drop > 0) {
      this.#drop -= 1;
      return Promise.resolve();
    }
    return this.#inner.send(payload, to);
  }
  receive(): Promise<Datagram | null> {
    return this.#inner.receive();
  }
  close(): void {
    this.#inner.close();
  }
}

Deno.test("tunnel: a put resolves once the far end is done, lost datums are sent again", async () => {
  const auth = new TunnelAuth(KEY);
  const far = openUnicastSocket("127.0.0.1", 0);
  await using source = new TunnelSource("udp://far", { endpoint: far, auth });
  await using sink = new TunnelSink("udp://near", {
    endpoint: new Lossy(openUnicastSocket("127.0.0.1", 0), 2),
    peer: far.local,
    auth,
    resendMs: 20,
  });
  const sent: PipeDatagram[] = [1, 2, 3].map((k) => ({
    id: `0123456789abcdef:${k}`,
    bytes: new Uint8Array([k]),
    hops: 8,
  }));
  let held = 0;
  const puts = sent.map((d) => sink.put(d).then(() => held++));
  const got: PipeDatagram[] = [];
  for (let k = 0; k < 3; k++) {
    const datagram = await source.next();
    assert.ok(datagram);
    got.push(datagram);
  }
  // In the order they were put, though the first two were lost once.
  assert.deepEqual(got.map((d) => [d.id, [...d.bytes], d.hops]), [
    ["0123456789abcdef:1", [1], 8],
    ["0123456789abcdef:2", [2], 8],
    ["0123456789abcdef:3", [3], 8],
  ]);
  assert.equal(held, 0, "nothing held before done()");
  for (const datagram of got) await source.done(datagram);
  await Promise.all(puts);
  assert.equal(held, 3);
  assert.equal(sink.inFlight, 0);
  assert.ok(sink.stats.resent >= 2, `resent ${sink.stats.resent}`);
  // Reports travel back, far to near.
  const report = new Promise<Uint8Array>((resolve) => sink.onReport = resolve);
  source.report(new Uint8Array([9, 8, 7]));
  assert.deepEqual([...await report], [9, 8, 7]);
});

Deno.test("tunnel: a datum that waited on a gap goes on once the near end's low passes the gap", async () => {
  const auth = new TunnelAuth(KEY);
  const far = openUnicastSocket("127.0.0.1", 0);
  await using source = new TunnelSource("udp://far", { endpoint: far, auth });
  const near = openUnicastSocket("127.0.0.1", 0);
  const datum = (seq: number, low: number) =>
    auth.seal(encodeTunnelFrame({
      type: "datum",
      link: LINK,
      seq,
      low,
      hops: 8,
      id: `0123456789abcdef:${seq}`,
      bytes: new Uint8Array([seq]),
    }));
  try {
    // 2 waits on 1; 1 was held by the far end before it restarted, so the
    // near end never sends it again: it sends 2 again with low 2.
    await near.send(await datum(2, 1), far.local);
    await near.send(await datum(2, 2), far.local);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const got = await Promise.race([
      source.next(),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), 2_000);
      }),
    ]);
    clearTimeout(timer);
    if (got === "timeout") assert.fail("2 was not handed out");
    assert.deepEqual([got?.id, [...got!.bytes]], [
      "0123456789abcdef:2",
      [2],
    ]);
  } finally {
    near.close();
  }
});
