/**
 * Pipes over a NATS broker: the leg of `mcast-bridge` for sites without a
 * multicast path between them (`--to nats://HOST:PORT/SUBJECT` near the
 * sender, `--from nats://…` at the far site).
 *
 * Two modes, chosen by the URL:
 *
 * - `nats://HOST:PORT/SUBJECT`: core NATS, at most once. A datagram put
 *   while no far bridge is subscribed is gone; `put` resolves once the
 *   server has read it (a PING after it was answered), which is all core
 *   NATS can tell.
 * - `nats://HOST:PORT/SUBJECT?stream=NAME`: JetStream. The stream `NAME`
 *   (created on first use, file storage, taking `SUBJECT`) keeps every
 *   datagram; `put` resolves only on the stream's publish acknowledgement,
 *   with `Nats-Msg-Id` set to a DATA frame's id so that a restarted bridge's
 *   re-publishes are dropped by the server (within the stream's duplicate
 *   window). The far side reads through a durable pull consumer (named by
 *   the bridge, `?durable=NAME` or {@linkcode NatsPipeOptions.durable}):
 *   {@linkcode PipeSource.done} acknowledges a datagram (and waits for the
 *   server to confirm it), so a far bridge that stopped, or was offline for
 *   a while, resumes at the first datagram it had not finished (after the
 *   last {@linkcode NatsPipeOptions.replay} it had, which it holds again
 *   for its far receivers' repairs).
 *
 * The datagram's id and hops travel in the headers `Mcast-Id` and
 * `Mcast-Hops`; its bytes are the message's payload, verbatim (sealed when
 * the group is keyed: the broker never sees plaintext).
 *
 * The client (`@nats-io/transport-node`, `@nats-io/jetstream`) is loaded
 * when a pipe is opened, so tools that never open one do not load it.
 *
 * @module
 */

import type {
  Msg,
  MsgHdrs,
  NatsConnection,
  Subscription,
} from "@nats-io/transport-node";
import type {
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from "@nats-io/jetstream";
import { errorLine, NetworkError, UsageError } from "../errors.ts";
import { checkName, type NatsTarget, parseNatsUrl } from "./nats_url.ts";
import { FLAGS, FRAME_TYPES, hasMagic } from "../wire/frame.ts";
import type { PipeDatagram, PipeSink, PipeSource } from "./pipe.ts";

/** Header that carries {@linkcode PipeDatagram.id}. */
export const ID_HEADER = "Mcast-Id";
/** Header that carries {@linkcode PipeDatagram.hops}. */
export const HOPS_HEADER = "Mcast-Hops";

/** Default of {@linkcode NatsPipeOptions.timeoutMs}. */
const DEFAULT_TIMEOUT_MS = 5_000;
/** Pause between two publishes of a datagram the stream did not acknowledge. */
const RETRY_WAIT_MS = 250;
/** Default of {@linkcode NatsPipeOptions.replay}. */
const DEFAULT_REPLAY = 1_024;
/** Default of {@linkcode NatsPipeOptions.replayMs}. */
const DEFAULT_REPLAY_MS = 60_000;
/** Default of {@linkcode NatsPipeOptions.duplicateWindowMs}: two minutes. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** Default of {@linkcode NatsPipeOptions.durable}. */
const DEFAULT_DURABLE = "mcast-bridge";
/**
 * How long the server waits for a delivered datagram's acknowledgement
 * before it delivers it again (the source drops such a second copy while
 * it runs; after a restart the consumer resumes at its acknowledgement
 * floor at once).
 */
const ACK_WAIT_MS = 60_000;
/** Most datagrams delivered to a far bridge and not yet done. */
const MAX_ACK_PENDING = 8_192;
/** Datagrams one pull asks for. */
const PULL_BATCH = 256;

/** Options of {@linkcode openNatsSink} and {@linkcode openNatsSource}. */
export interface NatsPipeOptions {
  /**
   * The JetStream stream: makes the pipe durable (overrides the URL's
   * `?stream=`).
   */
  stream?: string;
  /**
   * The far side's durable consumer name, e.g. the bridge's `--name`
   * (overrides the URL's `?durable=`; default `mcast-bridge`). Each far
   * site needs its own.
   */
  durable?: string;
  /**
   * Longest wait for the server: connecting, a publish acknowledgement, a
   * `done` confirmation (default 5,000 ms). `done` and a core NATS `put`
   * reject with a {@linkcode NetworkError} after it; a JetStream `put`
   * publishes again (see {@linkcode NatsPipeOptions.retryMs}).
   */
  timeoutMs?: number;
  /**
   * How long a JetStream `put` keeps publishing a datagram the stream does
   * not acknowledge (each try waits {@linkcode NatsPipeOptions.timeoutMs})
   * before it rejects; default: until the sink is closed, so that a broker
   * that is away holds the bridge back instead of losing datagrams.
   */
  retryMs?: number;
  /**
   * How many datagrams before its first not done a restarted far bridge
   * reads again, to hold them for its far receivers' repairs (they drop
   * the copies they have); default 1,024, 0 for none. JetStream only.
   */
  replay?: number;
  /**
   * Of those, only the ones stored this recently (default 60,000 ms): older
   * ones are past repairing, and a far receiver without a state file would
   * show them again.
   */
  replayMs?: number;
  /**
   * Seals and opens the far receivers' reports that travel back from the
   * far bridge to the near one (`mcast-bridge` uses the tunnel's HMAC with
   * the group key when it has one); without it reports travel as they are.
   */
  reportAuth?: ReportAuth;
  /**
   * The duplicate window of a stream this pipe creates: re-publishes of an
   * id within it are dropped (default 120,000 ms).
   */
  duplicateWindowMs?: number;
}

/**
 * Seals and opens reports (see {@linkcode NatsPipeOptions.reportAuth}); the
 * bridge's `TunnelAuth` is one.
 */
export interface ReportAuth {
  /**
   * Seals an encoded frame.
   *
   * @param frame The frame.
   * @returns What to send.
   */
  seal(frame: Uint8Array): Promise<Uint8Array>;
  /**
   * Opens a sealed frame.
   *
   * @param bytes What arrived.
   * @returns The frame, or `undefined` when it is forged or stale.
   */
  open(bytes: Uint8Array): Promise<Uint8Array | undefined>;
}

/**
 * The subject the far bridges report their far receivers on (core NATS,
 * best effort), for a pipe's subject: outside any stream that takes the
 * datagrams' subject.
 *
 * @param subject The datagrams' subject.
 * @returns The reports' subject.
 */
export function reportSubject(subject: string): string {
  return `_MCAST.REPORT.${subject}`;
}

/** What a pipe resolves from its URL and options. */
interface Resolved {
  target: NatsTarget;
  stream: string | undefined;
  durable: string;
  timeoutMs: number;
  duplicateWindowMs: number;
  replay: number;
  replayMs: number;
  retryMs: number;
  reportAuth: ReportAuth | undefined;
  name: string;
}

function resolve(url: string, options: NatsPipeOptions): Resolved {
  const target = parseNatsUrl(url);
  const stream = options.stream ?? target.stream;
  if (stream !== undefined) checkName("stream", stream);
  const durable = options.durable ?? target.durable ?? DEFAULT_DURABLE;
  checkName("durable", durable);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const duplicateWindowMs = options.duplicateWindowMs ??
    DEFAULT_DUPLICATE_WINDOW_MS;
  for (
    const [what, value] of [["timeout", timeoutMs], [
      "duplicate window",
      duplicateWindowMs,
    ]] as const
  ) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new UsageError(`the ${what} must be a positive number of ms`);
    }
  }
  const retryMs = options.retryMs ?? Infinity;
  if (!(retryMs >= 0)) {
    throw new UsageError("the retry time must be a number of ms");
  }
  const replayMs = options.replayMs ?? DEFAULT_REPLAY_MS;
  if (!(replayMs >= 0)) {
    throw new UsageError("the replay time must be a number of ms");
  }
  const replay = options.replay ?? DEFAULT_REPLAY;
  if (!Number.isSafeInteger(replay) || replay < 0) {
    throw new UsageError("the replay must be a whole number of datagrams");
  }
  const name = `nats://${target.server}/${target.subject}${
    stream === undefined ? "" : `?stream=${stream}`
  }`;
  return {
    target,
    stream,
    durable,
    timeoutMs,
    duplicateWindowMs,
    replay,
    replayMs,
    retryMs,
    reportAuth: options.reportAuth,
    name,
  };
}

type Core = typeof import("@nats-io/transport-node");
type Jet = typeof import("@nats-io/jetstream");

/** Loads the client (on first use only). */
async function loadClient(): Promise<{ core: Core; jet: Jet }> {
  const [core, jet] = await Promise.all([
    import("@nats-io/transport-node"),
    import("@nats-io/jetstream"),
  ]);
  return { core, jet };
}

async function connectTo(
  core: Core,
  resolved: Resolved,
): Promise<NatsConnection> {
  try {
    return await core.connect({
      servers: resolved.target.server,
      name: "mcast-bridge",
      timeout: resolved.timeoutMs,
      // A bridge outlives broker restarts: it reconnects for ever, and its
      // puts fail (after timeoutMs) while the broker is away.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (error) {
    throw new NetworkError(
      `cannot reach the broker at nats://${resolved.target.server}: ${
        errorLine(error)
      }`,
    );
  }
}

/** Runs `promise`; rejects with a NetworkError saying `what` after `ms`. */
async function within<T>(
  ms: number,
  what: string,
  promise: Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NetworkError(`${what}: no answer within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (error) {
    if (error instanceof NetworkError) throw error;
    throw new NetworkError(`${what}: ${errorLine(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `subject` is matched by a stream's subject `filter`. */
function subjectMatches(filter: string, subject: string): boolean {
  const want = filter.split(".");
  const have = subject.split(".");
  for (const [i, token] of want.entries()) {
    if (token === ">") return have.length > i;
    if (i >= have.length || (token !== "*" && token !== have[i])) return false;
  }
  return want.length === have.length;
}

function isNotFound(error: unknown, jet: Jet): boolean {
  return error instanceof jet.JetStreamApiError &&
    (error.code === 404 || /not found/i.test(error.message));
}

/**
 * Makes sure the stream exists and takes the pipe's subject: creates it
 * (file storage, limits retention) when it is missing.
 */
async function ensureStream(
  jet: Jet,
  jsm: JetStreamManager,
  resolved: Resolved,
  stream: string,
): Promise<void> {
  const subject = resolved.target.subject;
  const what = `stream ${stream} on nats://${resolved.target.server}`;
  for (let attempt = 0;; attempt++) {
    try {
      const info = await jsm.streams.info(stream);
      if (!info.config.subjects?.some((s) => subjectMatches(s, subject))) {
        throw new UsageError(
          `${what} does not take subject ${subject} (it takes ${
            info.config.subjects?.join(", ") || "none"
          })`,
        );
      }
      return;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      if (!isNotFound(error, jet)) {
        throw new NetworkError(`${what}: ${errorLine(error)}`);
      }
    }
    try {
      await jsm.streams.add({
        name: stream,
        subjects: [subject],
        storage: jet.StorageType.File,
        retention: jet.RetentionPolicy.Limits,
        duplicate_window: resolved.duplicateWindowMs * 1_000_000,
      });
      return;
    } catch (error) {
      // The far bridge may have created it meanwhile: look again, once.
      if (attempt > 0) {
        throw new NetworkError(`cannot create ${what}: ${errorLine(error)}`);
      }
    }
  }
}

function datagramHeaders(core: Core, datagram: PipeDatagram): MsgHdrs {
  const headers = core.headers();
  headers.set(ID_HEADER, datagram.id);
  headers.set(HOPS_HEADER, String(datagram.hops));
  return headers;
}

/**
 * Reads a message's datagram.
 *
 * @returns The datagram, or `undefined` when the message lacks the headers
 * (not published by a bridge).
 */
function readDatagram(
  headers: MsgHdrs | undefined,
  data: Uint8Array,
): PipeDatagram | undefined {
  const id = headers?.get(ID_HEADER) ?? "";
  const hopsText = headers?.get(HOPS_HEADER) ?? "";
  const hops = Number(hopsText);
  if (id === "" || !/^[0-9]+$/.test(hopsText) || !Number.isSafeInteger(hops)) {
    return undefined;
  }
  // A copy: the client hands out views of its read buffer (Node Buffers).
  return { id, bytes: new Uint8Array(data), hops };
}

/** A DATA frame's id: `<session>:<seq>` (see {@linkcode PipeDatagram.id}). */
const DATA_ID = /^[0-9a-f]{16}:[0-9]+$/;

/**
 * The `Nats-Msg-Id` of a datagram: a DATA frame's id, so that the stream
 * keeps one copy of a datagram however often it is put (a restarted
 * bridge puts again what the sender repairs); `:signed` added when the
 * frame carries the sender's signature, so that the signed re-send of a
 * datagram first sent unsigned (the sender signs when it pauses) is not
 * taken for a copy. For anything else (a heartbeat, a plain datagram that
 * may well be sent twice with the same bytes): the id and a nonce of this
 * put, so that only its own re-publishes are dropped.
 */
function messageId(datagram: PipeDatagram): string {
  if (!DATA_ID.test(datagram.id)) {
    return `${datagram.id}/${crypto.randomUUID()}`;
  }
  const bytes = datagram.bytes;
  const signed = bytes.length >= 24 && hasMagic(bytes) &&
    bytes[5] === FRAME_TYPES.data && (bytes[6]! & FLAGS.signed) !== 0;
  return signed ? `${datagram.id}:signed` : datagram.id;
}

function checkDatagram(datagram: PipeDatagram): void {
  if (
    datagram.id === "" || /[\r\n]/.test(datagram.id) ||
    !Number.isSafeInteger(datagram.hops) || datagram.hops < 0
  ) {
    throw new UsageError(
      `not a pipe datagram: id ${JSON.stringify(datagram.id)}, hops ${
        String(datagram.hops)
      }`,
    );
  }
}

/** The sending end over core NATS or JetStream. */
class NatsSink implements PipeSink {
  readonly name: string;
  readonly #core: Core;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient | undefined;
  readonly #resolved: Resolved;
  readonly #sleepers = new Set<() => void>();
  readonly #reports: Subscription;
  readonly #reading: Promise<void>;
  #closed = false;
  /** Receives the far bridges' reports (set by the relay core). */
  onReport?: (frame: Uint8Array) => void;

  constructor(
    core: Core,
    nc: NatsConnection,
    js: JetStreamClient | undefined,
    resolved: Resolved,
  ) {
    this.#core = core;
    this.#nc = nc;
    this.#js = js;
    this.#resolved = resolved;
    this.name = resolved.name;
    this.#reports = nc.subscribe(reportSubject(resolved.target.subject));
    this.#reading = this.#readReports();
  }

  /** Hands each report that opens to {@linkcode NatsSink.onReport}. */
  async #readReports(): Promise<void> {
    const auth = this.#resolved.reportAuth;
    for await (const message of this.#reports) {
      const bytes = new Uint8Array(message.data);
      const frame = auth
        ? await auth.open(bytes).catch(() => undefined)
        : bytes;
      if (frame !== undefined && !this.#closed) this.onReport?.(frame);
    }
  }

  async put(datagram: PipeDatagram): Promise<void> {
    if (this.#closed) throw new NetworkError(`${this.name} is closed`);
    checkDatagram(datagram);
    const { subject } = this.#resolved.target;
    const headers = datagramHeaders(this.#core, datagram);
    const what = `${this.name}: put ${datagram.id}`;
    const js = this.#js;
    const stream = this.#resolved.stream;
    if (js === undefined || stream === undefined) {
      try {
        this.#nc.publish(subject, datagram.bytes, { headers });
      } catch (error) {
        throw new NetworkError(`${what}: ${errorLine(error)}`);
      }
      await within(this.#resolved.timeoutMs, what, this.#nc.flush());
      return;
    }
    // Published again (same Nats-Msg-Id: the stream keeps one) until the
    // stream acknowledges it, for up to retryMs: a broker that is away
    // holds the put back instead of losing the datagram.
    const msgID = messageId(datagram);
    const giveUp = performance.now() + this.#resolved.retryMs;
    for (;;) {
      try {
        const ack = await within(
          this.#resolved.timeoutMs,
          what,
          js.publish(subject, datagram.bytes, {
            msgID,
            headers,
            expect: { streamName: stream },
            timeout: this.#resolved.timeoutMs,
          }),
        );
        if (ack.stream !== stream) {
          throw new UsageError(`${what}: acknowledged by stream ${ack.stream}`);
        }
        return;
      } catch (error) {
        if (
          error instanceof UsageError || this.#closed ||
          performance.now() + RETRY_WAIT_MS >= giveUp
        ) {
          throw error;
        }
      }
      await this.#pause(RETRY_WAIT_MS);
      if (this.#closed) throw new NetworkError(`${what}: the pipe closed`);
    }
  }

  /** Waits `ms`, or until the sink is closed. */
  #pause(ms: number): Promise<void> {
    return new Promise((wake) => {
      const done = () => {
        clearTimeout(timer);
        this.#sleepers.delete(done);
        wake();
      };
      const timer = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const wake of [...this.#sleepers]) wake();
    this.#reports.unsubscribe();
    await this.#nc.close();
    await this.#reading;
  }
}

/**
 * Opens the sending end of a NATS pipe: connects, and in JetStream mode
 * creates the stream when it is missing.
 *
 * @param url `nats://HOST:PORT/SUBJECT`, `?stream=NAME` for JetStream.
 * @param options Stream, timeout, duplicate window.
 * @returns The sink; dispose it to close the connection.
 * @throws {UsageError} For a bad URL or a stream that does not take the
 * subject.
 * @throws {NetworkError} When the broker cannot be reached.
 */
export async function openNatsSink(
  url: string,
  options: NatsPipeOptions = {},
): Promise<PipeSink> {
  const resolved = resolve(url, options);
  const { core, jet } = await loadClient();
  const nc = await connectTo(core, resolved);
  try {
    let js: JetStreamClient | undefined;
    if (resolved.stream !== undefined) {
      const jsm = await within(
        resolved.timeoutMs,
        `JetStream on nats://${resolved.target.server}`,
        jet.jetstreamManager(nc, { timeout: resolved.timeoutMs }),
      );
      await ensureStream(jet, jsm, resolved, resolved.stream);
      js = jsm.jetstream();
    }
    return new NatsSink(core, nc, js, resolved);
  } catch (error) {
    await nc.close();
    throw error;
  }
}

function isJsMsg(_message: Msg | JsMsg, durable: boolean): _message is JsMsg {
  return durable;
}

/** The receiving end over core NATS or JetStream. */
class NatsSource implements PipeSource {
  readonly name: string;
  readonly #nc: NatsConnection;
  readonly #resolved: Resolved;
  readonly #subscription: Subscription | undefined;
  readonly #messages: ConsumerMessages | undefined;
  /** One iterator for the source's life (a `for await` would end it). */
  readonly #iterator: AsyncIterator<Msg | JsMsg>;
  readonly #pending = new WeakMap<PipeDatagram, JsMsg>();
  /** Highest stream sequence returned: a redelivery of one is dropped. */
  #highest = 0;
  #closed = false;
  /** The last report being sealed and sent. */
  #reporting: Promise<void> = Promise.resolve();
  /** Messages dropped because a bridge did not publish them. */
  skipped = 0;

  constructor(
    nc: NatsConnection,
    resolved: Resolved,
    from: Subscription | ConsumerMessages,
    durable: boolean,
  ) {
    this.#nc = nc;
    this.#resolved = resolved;
    this.name = durable
      ? `${resolved.name}&durable=${resolved.durable}`
      : resolved.name;
    if (durable) this.#messages = from as ConsumerMessages;
    else this.#subscription = from as Subscription;
    this.#iterator = from[Symbol.asyncIterator]();
  }

  async next(): Promise<PipeDatagram | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      const result = await this.#iterator.next();
      if (result.done || this.#closed) return undefined;
      const message = result.value;
      if (!isJsMsg(message, this.#messages !== undefined)) {
        const datagram = readDatagram(message.headers, message.data);
        if (datagram !== undefined) return datagram;
        this.skipped++;
        continue;
      }
      const sequence = message.info.streamSequence;
      if (sequence <= this.#highest) continue;
      this.#highest = sequence;
      const datagram = readDatagram(message.headers, message.data);
      if (datagram !== undefined) {
        this.#pending.set(datagram, message);
        return datagram;
      }
      this.skipped++;
      message.ack();
    }
  }

  async done(datagram: PipeDatagram): Promise<void> {
    if (this.#messages === undefined) return;
    const message = this.#pending.get(datagram);
    if (message === undefined) {
      throw new UsageError(
        `${this.name}: done for a datagram this source did not return (or twice): ${datagram.id}`,
      );
    }
    this.#pending.delete(datagram);
    await within(
      this.#resolved.timeoutMs,
      `${this.name}: done ${datagram.id}`,
      message.ackAck({ timeout: this.#resolved.timeoutMs }),
    );
  }

  /**
   * Publishes a far receiver's report for the near bridge (core NATS,
   * best effort), sealed when the pipe has a report authenticator.
   *
   * @param frame A HELLO, ACK or BYE frame, encoded without a trailer.
   */
  report(frame: Uint8Array): void {
    if (this.#closed) return;
    const auth = this.#resolved.reportAuth;
    const subject = reportSubject(this.#resolved.target.subject);
    // One after the other, in the order reported (sealing is asynchronous).
    this.#reporting = this.#reporting.then(async () => {
      const bytes = auth ? await auth.seal(frame) : frame;
      if (!this.#closed) this.#nc.publish(subject, bytes);
    }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reporting;
    this.#subscription?.unsubscribe();
    // Not close(): it waits until the iterator took every buffered message.
    this.#messages?.stop();
    await this.#nc.close();
  }
}

/**
 * The first stream sequence from `low` to `high` stored at `since` or
 * later (`high + 1` when none is), by bisection over the stored times; a
 * sequence no longer stored counts as older.
 */
async function firstSince(
  jsm: JetStreamManager,
  stream: string,
  low: number,
  high: number,
  since: number,
): Promise<number> {
  let lo = low;
  let hi = high + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const message = await jsm.streams.getMessage(stream, { seq: mid })
      .catch(() => null);
    if (message !== null && message.time.getTime() >= since) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Makes sure the durable consumer exists and resumes at its first
 * datagram not done, less {@linkcode NatsPipeOptions.replay} datagrams
 * (those stored in the last {@linkcode NatsPipeOptions.replayMs}).
 *
 * The server would deliver datagrams that a stopped bridge had received
 * but not finished only after their acknowledgement wait, after newer
 * ones; and the datagrams it had finished (multicast) are what its far
 * receivers may still ask it to repair, which a restarted bridge no longer
 * holds. So a consumer that was used is recreated to start `replay`
 * datagrams before its acknowledgement floor: the restarted bridge holds
 * them again for repairs, and the far receivers drop the copies they have.
 */
async function ensureConsumer(
  jet: Jet,
  jsm: JetStreamManager,
  resolved: Resolved,
  stream: string,
): Promise<void> {
  const { durable, target } = resolved;
  const what = `consumer ${durable} of stream ${stream}`;
  const base = {
    "durable_name": durable,
    "ack_policy": jet.AckPolicy.Explicit,
    "filter_subject": target.subject,
    "ack_wait": ACK_WAIT_MS * 1_000_000,
    "max_ack_pending": MAX_ACK_PENDING,
  };
  try {
    let info;
    try {
      info = await jsm.consumers.info(stream, durable);
    } catch (error) {
      if (!isNotFound(error, jet)) throw error;
      await jsm.consumers.add(stream, {
        ...base,
        "deliver_policy": jet.DeliverPolicy.All,
      });
      return;
    }
    if (info.config.filter_subject !== target.subject) {
      throw new UsageError(
        `${what} reads ${
          info.config.filter_subject ?? "every subject"
        }, not ${target.subject}: pick another --name`,
      );
    }
    const floor = info.ack_floor.stream_seq;
    const start = await firstSince(
      jsm,
      stream,
      Math.max(1, floor + 1 - resolved.replay),
      floor,
      Date.now() - resolved.replayMs,
    );
    if (
      start <= floor || info.delivered.stream_seq > floor ||
      info.num_ack_pending > 0
    ) {
      await jsm.consumers.delete(stream, durable);
      await jsm.consumers.add(stream, {
        ...base,
        "deliver_policy": jet.DeliverPolicy.StartSequence,
        "opt_start_seq": start,
      });
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new NetworkError(`${what}: ${errorLine(error)}`);
  }
}

/**
 * Opens the receiving end of a NATS pipe. In core mode it subscribes to
 * the subject (datagrams published before that are not seen). In JetStream
 * mode it creates the stream and the durable consumer when missing, and
 * resumes at the consumer's first datagram not done.
 *
 * @param url `nats://HOST:PORT/SUBJECT`, `?stream=NAME` for JetStream,
 * `&durable=NAME` for the consumer.
 * @param options Stream, consumer, timeout, duplicate window.
 * @returns The source; dispose it to close the connection (datagrams not
 * done are delivered again to the next source of that consumer).
 * @throws {UsageError} For a bad URL, or a stream or consumer that does not
 * fit the subject.
 * @throws {NetworkError} When the broker cannot be reached.
 */
export async function openNatsSource(
  url: string,
  options: NatsPipeOptions = {},
): Promise<PipeSource> {
  const resolved = resolve(url, options);
  const { core, jet } = await loadClient();
  const nc = await connectTo(core, resolved);
  try {
    const stream = resolved.stream;
    if (stream === undefined) {
      const subscription = nc.subscribe(resolved.target.subject);
      // The subscription is registered with the server before any put
      // made after this returns.
      await within(
        resolved.timeoutMs,
        `subscribe on nats://${resolved.target.server}`,
        nc.flush(),
      );
      return new NatsSource(nc, resolved, subscription, false);
    }
    const jsm = await within(
      resolved.timeoutMs,
      `JetStream on nats://${resolved.target.server}`,
      jet.jetstreamManager(nc, { timeout: resolved.timeoutMs }),
    );
    await ensureStream(jet, jsm, resolved, stream);
    await ensureConsumer(jet, jsm, resolved, stream);
    const consumer = await within(
      resolved.timeoutMs,
      `consumer ${resolved.durable} of stream ${stream}`,
      jsm.jetstream().consumers.get(stream, resolved.durable),
    );
    const messages = await consumer.consume({ max_messages: PULL_BATCH });
    return new NatsSource(nc, resolved, messages, true);
  } catch (error) {
    await nc.close();
    throw error;
  }
}
