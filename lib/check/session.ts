/**
 * The probing state machine of `mcast-check`, without I/O: it is told what
 * arrived ({@linkcode CheckSession.receive}) and what time it is
 * ({@linkcode CheckSession.tick}), and answers with the messages to send.
 *
 * The model is omping's: each instance greets every peer by unicast until
 * it hears from it ("hello"), then sends `count` rounds, one every
 * `interval`: a unicast probe to each peer and one multicast probe to the
 * group. Every instance answers every probe of a known peer by unicast, so
 * the prober measures round trips for both. An instance stops when all its
 * probes are answered (or the wait after the last one ran out) and it heard
 * every peer's last probe (or gave up waiting), or at the timeout.
 *
 * @module
 */

import type { Peer } from "../net/address.ts";
import type { CheckMessage } from "./probe.ts";

/** Settings of a {@linkcode CheckSession}. */
export interface CheckSessionOptions {
  /** This instance's id (random per run). */
  id: number;
  /** The other instances, by unicast address and port. */
  peers: Peer[];
  /** Rounds of probes. */
  count: number;
  /** Time between rounds, ms. */
  intervalMs: number;
  /** TTL of multicast probes. */
  ttl: number;
  /** TTL unicast datagrams leave with (the system's default, usually 64). */
  unicastTtl: number;
  /** Longest the whole check may take, ms. */
  timeoutMs: number;
  /**
   * Delay of the first round after the peers are up, ms (0 when absent),
   * less than `intervalMs`: instances that start together would otherwise
   * probe in lockstep, each probe arriving while its peer is busy waking
   * up and sending its own round, which adds that work to every round trip.
   */
  phaseMs?: number;
}

/** Where a message goes: a peer, or the group. */
export type CheckDestination = { peer: Peer } | { group: true };

/** One message to send. */
export interface CheckOutgoing {
  /** The destination. */
  to: CheckDestination;
  /** The message. */
  message: CheckMessage;
}

/** Round-trip times, ms. */
export interface RttSummary {
  /** Shortest. */
  min: number;
  /** Mean. */
  avg: number;
  /** Longest. */
  max: number;
}

/** What one channel (unicast or multicast) to one peer measured. */
export interface ChannelResult {
  /** Probes sent. */
  sent: number;
  /** Distinct probes answered. */
  answered: number;
  /** Unanswered share of the probes sent, percent (100 when none was sent). */
  loss: number;
  /** Round trips of the answered probes; absent when none was answered. */
  rtt?: RttSummary;
  /** Answers that arrived more than once. */
  dups: number;
  /**
   * Hop distance (1: same link): what the peer measured our probes at,
   * else what we measured the peer's at when it answered; absent when
   * unknown (no answer, or no received TTL on either side).
   */
  hops?: number;
  /** Distinct probes of the peer that reached us on this channel. */
  heard: number;
  /** Probes the peer announced it sends (its `--count`), 0 if never heard. */
  expected: number;
}

/** What the check measured for one peer. */
export interface PeerResult {
  /** The peer, as `address:port`. */
  peer: string;
  /** True once anything arrived from it. */
  up: boolean;
  /** Unicast probes and answers. */
  unicast: ChannelResult;
  /** Multicast probes and answers. */
  multicast: ChannelResult;
  /**
   * Multicast works both ways: some of our multicast probes were answered
   * and some of the peer's reached us.
   */
  reachable: boolean;
}

interface Channel {
  rtts: Map<number, number>;
  dups: number;
  /** The hop distance the peer measured our probes at. */
  hops: number | undefined;
  /** The hop distance we measured the peer's probes at. */
  hopsIn: number | undefined;
  heard: Set<number>;
}

interface PeerState {
  peer: Peer;
  key: string;
  up: boolean;
  count: number;
  /** When the peer's last probe was first heard, on either channel. */
  lastProbeAt: number | undefined;
  lastHeardAt: number;
  unicast: Channel;
  multicast: Channel;
}

/**
 * A peer as `address:port`, the key results and findings use.
 *
 * @param peer The peer.
 * @returns `198.51.100.2:4322`.
 */
export function peerKey(peer: Peer): string {
  return `${peer.address}:${peer.port}`;
}

function channel(): Channel {
  return {
    rtts: new Map(),
    dups: 0,
    hops: undefined,
    hopsIn: undefined,
    heard: new Set(),
  };
}

/** Shortest wait for answers after the last round, ms. */
const MIN_WAIT_MS = 500;

/** The probing state machine; see the module documentation. */
export class CheckSession {
  readonly #options: CheckSessionOptions;
  readonly #peers = new Map<string, PeerState>();
  readonly #start: number;
  /** Rounds sent: every peer got as many unicast probes and the group as many. */
  #round = 0;
  #probing = false;
  #nextRound = 0;
  #nextHello: number;
  #lastRoundAt: number | undefined;
  #finished = false;

  /**
   * Starts a session: it greets its peers at the first tick.
   *
   * @param options The settings.
   * @param now The current time, ms.
   */
  constructor(options: CheckSessionOptions, now: number) {
    this.#options = options;
    this.#start = now;
    this.#nextHello = now;
    for (const peer of options.peers) {
      const key = peerKey(peer);
      this.#peers.set(key, {
        peer,
        key,
        up: false,
        count: 0,
        lastProbeAt: undefined,
        lastHeardAt: now,
        unicast: channel(),
        multicast: channel(),
      });
    }
  }

  /**
   * Takes one received message.
   *
   * @param message The decoded message.
   * @param context Where it came from, the socket it reached (`group`: the
   * group's), the TTL it arrived with when known, and the time.
   * @returns What to send in answer.
   */
  receive(
    message: CheckMessage,
    context: {
      from: Peer;
      group: boolean;
      ttl?: number;
      now: number;
    },
  ): CheckOutgoing[] {
    if (message.id === this.#options.id) return [];
    const state = this.#peers.get(peerKey(context.from));
    if (state === undefined) return [];
    state.up = true;
    state.lastHeardAt = context.now;
    const out: CheckOutgoing[] = [];
    switch (message.kind) {
      case "hello":
        state.count = message.count;
        out.push({
          to: { peer: state.peer },
          message: {
            ...this.#base("hello-answer"),
            count: this.#options.count,
          },
        });
        break;
      case "hello-answer":
        state.count = message.count;
        break;
      case "probe": {
        state.count = message.count;
        const multicast = context.group;
        const ch = multicast ? state.multicast : state.unicast;
        ch.heard.add(message.seq);
        if (message.seq + 1 >= message.count) {
          state.lastProbeAt ??= context.now;
        }
        const hops = context.ttl !== undefined && message.ttl >= context.ttl
          ? message.ttl - context.ttl + 1
          : 0;
        if (hops > 0) ch.hopsIn = hops;
        out.push({
          to: { peer: state.peer },
          message: {
            ...this.#base("answer"),
            multicast,
            ttl: hops,
            seq: message.seq,
            time: message.time,
          },
        });
        break;
      }
      case "answer": {
        const ch = message.multicast ? state.multicast : state.unicast;
        if (message.seq >= this.#round) break;
        if (ch.rtts.has(message.seq)) {
          ch.dups += 1;
          break;
        }
        ch.rtts.set(message.seq, Math.max(0, context.now - message.time));
        if (message.ttl > 0) ch.hops = message.ttl;
        break;
      }
    }
    return out;
  }

  #base(kind: CheckMessage["kind"]): CheckMessage {
    return {
      kind,
      multicast: false,
      ttl: 0,
      id: this.#options.id,
      seq: 0,
      count: 0,
      time: 0,
    };
  }

  /**
   * Sends what is due: hellos to silent peers, the next round of probes.
   *
   * @param now The current time, ms.
   * @returns What to send.
   */
  tick(now: number): CheckOutgoing[] {
    const o = this.#options;
    const out: CheckOutgoing[] = [];
    if (!this.#probing) {
      const allUp = [...this.#peers.values()].every((p) => p.up);
      if (allUp || now - this.#start >= o.timeoutMs / 2) {
        this.#probing = true;
        this.#nextRound = now + (o.phaseMs ?? 0);
      }
    }
    if (now >= this.#nextHello) {
      for (const state of this.#peers.values()) {
        if (state.up) continue;
        out.push({
          to: { peer: state.peer },
          message: { ...this.#base("hello"), count: o.count },
        });
      }
      this.#nextHello = now + o.intervalMs;
    }
    if (
      this.#probing && this.#round < o.count &&
      now >= this.#nextRound
    ) {
      const seq = this.#round++;
      for (const state of this.#peers.values()) {
        out.push({
          to: { peer: state.peer },
          message: {
            ...this.#base("probe"),
            ttl: o.unicastTtl,
            seq,
            count: o.count,
            time: now,
          },
        });
      }
      out.push({
        to: { group: true },
        message: {
          ...this.#base("probe"),
          multicast: true,
          ttl: o.ttl,
          seq,
          count: o.count,
          time: now,
        },
      });
      this.#nextRound = now + o.intervalMs;
      if (this.#round === o.count) this.#lastRoundAt = now;
    }
    return out;
  }

  /** How long to wait for answers after the last round, ms. */
  #waitMs(): number {
    let slowest = 0;
    for (const state of this.#peers.values()) {
      for (const rtt of state.unicast.rtts.values()) {
        slowest = Math.max(slowest, rtt);
      }
      for (const rtt of state.multicast.rtts.values()) {
        slowest = Math.max(slowest, rtt);
      }
    }
    return Math.max(MIN_WAIT_MS, 2 * this.#options.intervalMs, 4 * slowest);
  }

  #ownDone(now: number): boolean {
    if (this.#lastRoundAt === undefined) return false;
    const all = [...this.#peers.values()].every((s) =>
      s.unicast.rtts.size === this.#round &&
      s.multicast.rtts.size === this.#round
    );
    return all || now >= this.#lastRoundAt + this.#waitMs();
  }

  /**
   * Tells whether the check is over: at the timeout, or once this
   * instance's probes are settled and every peer finished probing (its last
   * probe heard, or nothing heard from it for as long as its probes take).
   *
   * @param now The current time, ms.
   * @returns True when over.
   */
  done(now: number): boolean {
    if (this.#finished) return true;
    const o = this.#options;
    if (now - this.#start >= o.timeoutMs) return this.#finished = true;
    if (!this.#ownDone(now)) return false;
    const wait = this.#waitMs();
    const patience = o.count * o.intervalMs + wait;
    const peersDone = [...this.#peers.values()].every((s) => {
      const last = s.count - 1;
      if (s.unicast.heard.has(last) && s.multicast.heard.has(last)) {
        return true;
      }
      if (s.lastProbeAt !== undefined) return now - s.lastProbeAt >= wait;
      return now - s.lastHeardAt >= patience;
    });
    if (peersDone) this.#finished = true;
    return this.#finished;
  }

  /**
   * When {@linkcode CheckSession.tick} or {@linkcode CheckSession.done}
   * next has something to do, ms.
   *
   * @param now The current time, ms.
   * @returns A time not before `now`.
   */
  nextWake(now: number): number {
    const o = this.#options;
    const times = [this.#start + o.timeoutMs, now + o.intervalMs];
    if ([...this.#peers.values()].some((s) => !s.up)) {
      times.push(this.#nextHello);
    }
    if (this.#probing && this.#round < o.count) {
      times.push(this.#nextRound);
    }
    if (this.#lastRoundAt !== undefined) {
      times.push(this.#lastRoundAt + this.#waitMs());
    }
    for (const s of this.#peers.values()) {
      if (s.lastProbeAt !== undefined) {
        times.push(s.lastProbeAt + this.#waitMs());
      }
    }
    return Math.max(now, Math.min(...times));
  }

  /**
   * What was measured, per peer, in the order the peers were given.
   *
   * @returns One result per peer.
   */
  results(): PeerResult[] {
    return [...this.#peers.values()].map((state) => {
      const unicast = channelResult(state.unicast, this.#round, state.count);
      const multicast = channelResult(
        state.multicast,
        this.#round,
        state.count,
      );
      return {
        peer: state.key,
        up: state.up,
        unicast,
        multicast,
        reachable: multicast.answered > 0 && multicast.heard > 0,
      };
    });
  }
}

function channelResult(
  ch: Channel,
  sent: number,
  expected: number,
): ChannelResult {
  const answered = ch.rtts.size;
  const result: ChannelResult = {
    sent,
    answered,
    loss: sent === 0 ? 100 : Math.round((sent - answered) / sent * 100),
    dups: ch.dups,
    heard: ch.heard.size,
    expected,
  };
  if (answered > 0) {
    const rtts = [...ch.rtts.values()];
    result.rtt = {
      min: Math.min(...rtts),
      avg: rtts.reduce((a, b) => a + b, 0) / answered,
      max: Math.max(...rtts),
    };
  }
  // Ours as the peer saw them, else theirs as we saw them (a peer on the
  // deno path cannot tell).
  const hops = ch.hops ?? (answered > 0 ? ch.hopsIn : undefined);
  if (hops !== undefined) result.hops = hops;
  return result;
}
