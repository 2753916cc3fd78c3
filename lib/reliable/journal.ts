/**
 * The reliable sender's journal (`mcast-send --journal DIR`): every encoded
 * DATA frame is written to disk before it is sent, so that a sender killed at
 * any point can be restarted, resume its session and complete delivery.
 *
 * The directory holds:
 *
 * - `lock`: the process id of the sender using the journal, held with an
 *   exclusive advisory lock (`flock`) for as long as the journal is open. The
 *   operating system releases the lock when its process dies, however it
 *   dies, so a lock left by a dead sender is taken over by the next one
 *   (which needs no permission to signal processes and is not fooled by a
 *   re-used process id). The file is never removed, so that two processes
 *   always lock the same file.
 * - `journal`: the session's log, a sequence of records, each a 32-bit
 *   big-endian length and that many bytes. The first record is a header, one
 *   line of JSON: `{"format":"mcast-journal","version":1,"session":…,
 *   "group":…,"port":…,"acked":A,"nextBulletin":B}`. Every later record is
 *   an encoded frame (`lib/wire/frame.ts`) of the session: a DATA frame, written
 *   by {@linkcode Journal.append}, whose sequence numbers run on from A + 1
 *   without a gap; or an ACK frame whose sequence number is a cumulative
 *   acknowledgement, written by {@linkcode Journal.markAcked}.
 * - `journal.tmp`: a new log being written; it replaces `journal` by an
 *   atomic rename once it is complete on disk (when a session begins and when
 *   the log is compacted). A leftover one is removed.
 *
 * Appends are flushed with `fdatasync` once per call. A crash in the middle
 * of an append leaves a torn final record, which recovery cuts off (as it
 * does a tail of zero bytes, which some file systems leave after a power
 * loss); anything else that does not parse is reported as corruption, with
 * the file and the offset.
 *
 * All methods are synchronous: the sender calls them between sends and must
 * not send a packet before it is on disk.
 *
 * @module
 */

import { errorLine, McastError, permissionHint } from "../errors.ts";
import { type AckFrame, decodeFrame, encodeFrame } from "../wire/frame.ts";

/** The journal format this module reads and writes. */
export const JOURNAL_VERSION = 1;
/** Largest record the log accepts: a frame fits a UDP datagram. */
export const MAX_JOURNAL_RECORD = 0xffff;
/**
 * Default of {@linkcode JournalOptions.compactAfter}: acknowledged bytes the
 * log may hold before it is compacted.
 */
export const DEFAULT_COMPACT_AFTER = 1024 * 1024;

const FORMAT = "mcast-journal";
const LOG_NAME = "journal";
const LOCK_NAME = "lock";
/** The name acknowledgement marks carry in their ACK frames. */
const MARK_NAME = "journal";
const MAX_HEADER = 4096;
const SESSION_PATTERN = /^[0-9a-f]{16}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** What identifies a sender session. */
export interface JournalMeta {
  /** The session id: 16 lowercase hex digits. */
  session: string;
  /** The multicast group the session sends to. */
  group: string;
  /** The UDP port the session sends to. */
  port: number;
}

/** An unfinished session found in a journal by {@linkcode Journal.recover}. */
export interface JournalRecovery {
  /** The session. */
  meta: JournalMeta;
  /**
   * The encoded DATA frames not yet acknowledged by every receiver, in
   * ascending sequence order without a gap: the first has sequence number
   * `acked + 1`, the last `nextSeq - 1` (empty when everything written was
   * acknowledged).
   */
  packets: Uint8Array[];
  /** The sequence number of the next DATA frame to send. */
  nextSeq: number;
  /** The next bulletin number: 1 + the highest bulletin in any record. */
  nextBulletin: number;
  /**
   * The highest sequence number every receiver acknowledged, as last
   * recorded by {@linkcode Journal.markAcked} (0: none).
   */
  acked: number;
}

/** Options of {@linkcode Journal.open}. */
export interface JournalOptions {
  /**
   * Compact the log when it holds at least this many bytes of acknowledged
   * records and they are more than half of it. Default
   * {@linkcode DEFAULT_COMPACT_AFTER}; 0 compacts whenever more than half of
   * the log is acknowledged.
   */
  compactAfter?: number;
}

/**
 * The journal cannot be opened, read or written, is in use by another
 * process, or is corrupt. Exit status 1.
 */
export class JournalError extends McastError {
  /**
   * Creates the error.
   *
   * @param message What failed, in one line naming the directory or file.
   */
  constructor(message: string) {
    super(message, 1);
    this.name = "JournalError";
  }
}

interface Header {
  session: string;
  group: string;
  port: number;
  acked: number;
  nextBulletin: number;
}

function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return permissionHint(error, "--allow-read and --allow-write");
  }
  if (
    error instanceof Deno.errors.NotADirectory ||
    error instanceof Deno.errors.AlreadyExists
  ) {
    return "not a directory";
  }
  return errorLine(error);
}

function isWhole(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) &&
    value >= min;
}

function metaProblem(meta: JournalMeta): string | null {
  if (typeof meta.session !== "string" || !SESSION_PATTERN.test(meta.session)) {
    return "session id must be 16 lowercase hex digits";
  }
  if (typeof meta.group !== "string" || meta.group === "") {
    return "group must be a non-empty string";
  }
  if (!isWhole(meta.port, 1) || meta.port > 65535) {
    return "port must be a whole number from 1 to 65535";
  }
  return null;
}

function parseHeader(bytes: Uint8Array): Header | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  if (record.format !== FORMAT || record.version !== JOURNAL_VERSION) {
    return null;
  }
  const header = {
    session: record.session,
    group: record.group,
    port: record.port,
    acked: record.acked,
    nextBulletin: record.nextBulletin,
  } as Header;
  if (metaProblem(header) !== null) return null;
  if (!isWhole(header.acked, 0) || !isWhole(header.nextBulletin, 1)) {
    return null;
  }
  return header;
}

function headerRecord(header: Header): Uint8Array {
  const json = encoder.encode(JSON.stringify({
    format: FORMAT,
    version: JOURNAL_VERSION,
    session: header.session,
    group: header.group,
    port: header.port,
    acked: header.acked,
    nextBulletin: header.nextBulletin,
  }));
  const bytes = new Uint8Array(4 + json.length);
  new DataView(bytes.buffer).setUint32(0, json.length);
  bytes.set(json, 4);
  return bytes;
}

function frameRecords(frames: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const frame of frames) size += 4 + frame.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const frame of frames) {
    view.setUint32(at, frame.length);
    bytes.set(frame, at + 4);
    at += 4 + frame.length;
  }
  return bytes;
}

function allZero(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += file.writeSync(bytes.subarray(written));
  }
}

function readAt(file: Deno.FsFile, offset: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  file.seekSync(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < size) {
    const count = file.readSync(bytes.subarray(read));
    if (count === null) throw new Error("unexpected end of file");
    read += count;
  }
  return bytes;
}

function syncDirectory(dir: string): void {
  const handle = Deno.openSync(dir, { read: true });
  try {
    handle.syncSync();
  } finally {
    handle.close();
  }
}

function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * A sender's journal in a directory, locked against other processes while
 * it is open. Open it with {@linkcode Journal.open}; then either
 * {@linkcode Journal.recover} an unfinished session or
 * {@linkcode Journal.begin} a new one; {@linkcode Journal.append} packets
 * before sending them; {@linkcode Journal.markAcked} what every receiver
 * has; {@linkcode Journal.finish} when the session is complete; and
 * {@linkcode Journal.close} in every case.
 */
export class Journal {
  /** The journal's directory. */
  readonly dir: string;
  /** The log file's path. */
  readonly path: string;
  #temporary: string;
  #lock: Deno.FsFile | null;
  #compactAfter: number;
  /** The open log, while a session is active (begun or recovered). */
  #log: Deno.FsFile | null = null;
  /** Whether the directory may hold a session this object has not seen. */
  #unseen = true;
  #meta: JournalMeta | null = null;
  #acked = 0;
  #nextSeq = 1;
  #nextBulletin = 1;
  /** Size of the log file. */
  #size = 0;
  /** Where the records after the header start. */
  #bodyStart = 0;
  /** Offsets of the DATA records with sequence numbers from `#firstSeq`. */
  #offsets: number[] = [];
  #firstSeq = 1;

  private constructor(dir: string, lock: Deno.FsFile, compactAfter: number) {
    this.dir = dir;
    this.path = `${dir}/${LOG_NAME}`;
    this.#temporary = `${this.path}.tmp`;
    this.#lock = lock;
    this.#compactAfter = compactAfter;
  }

  /**
   * Opens the journal in `dir`, creating the directory (mode 0700) when it
   * is missing, and locks it for this process.
   *
   * @param dir The journal's directory.
   * @param options Compaction threshold.
   * @returns The open journal; close it with {@linkcode Journal.close}.
   * @throws {JournalError} When the directory cannot be created or is not a
   * directory, or another process (or another open journal in this
   * process) uses it: `Journal "DIR" is in use by process PID`.
   * @throws {RangeError} When `options.compactAfter` is not a whole number.
   */
  static open(dir: string, options: JournalOptions = {}): Journal {
    const compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER;
    if (!isWhole(compactAfter, 0)) {
      throw new RangeError(
        `compactAfter must be a whole number: ${compactAfter}`,
      );
    }
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!Deno.statSync(dir).isDirectory) {
        throw new Deno.errors.NotADirectory();
      }
    } catch (error) {
      throw new JournalError(
        `Cannot open journal "${dir}": ${describeFsError(error)}`,
      );
    }
    const lockPath = `${dir}/${LOCK_NAME}`;
    let lock: Deno.FsFile;
    let locked: boolean;
    try {
      lock = Deno.openSync(lockPath, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
    } catch (error) {
      throw new JournalError(
        `Cannot open journal lock "${lockPath}": ${describeFsError(error)}`,
      );
    }
    try {
      locked = lock.tryLockSync(true);
      if (locked) {
        lock.truncateSync(0);
        lock.seekSync(0, Deno.SeekMode.Start);
        writeAll(lock, encoder.encode(`${Deno.pid}\n`));
      }
    } catch (error) {
      lock.close();
      throw new JournalError(
        `Cannot lock journal "${dir}": ${describeFsError(error)}`,
      );
    }
    if (!locked) {
      let holder = "";
      try {
        holder = new TextDecoder().decode(Deno.readFileSync(lockPath)).trim();
      } catch {
        // The holder is named when possible; the conflict is reported anyway.
      }
      lock.close();
      throw new JournalError(
        /^\d+$/.test(holder)
          ? `Journal "${dir}" is in use by process ${holder}`
          : `Journal "${dir}" is in use by another process`,
      );
    }
    return new Journal(dir, lock, compactAfter);
  }

  /**
   * Looks for an unfinished session, repairs a torn final record and makes
   * the session current, so that {@linkcode Journal.append} continues it.
   *
   * @returns The session's state, or null when the directory holds no
   * unfinished session.
   * @throws {JournalError} When the log cannot be read or is corrupt
   * (naming the file and the offset).
   */
  recover(): JournalRecovery | null {
    this.#checkOpen();
    this.#closeLog();
    this.#meta = null;
    let bytes: Uint8Array;
    try {
      removeIfPresent(this.#temporary);
      bytes = Deno.readFileSync(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        this.#unseen = false;
        return null;
      }
      throw new JournalError(
        `Cannot read journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
    const parsed = this.#parse(bytes);
    const { header } = parsed;
    if (parsed.end < bytes.length) {
      try {
        using file = Deno.openSync(this.path, { write: true });
        file.truncateSync(parsed.end);
        file.syncDataSync();
      } catch (error) {
        throw new JournalError(
          `Cannot repair journal file "${this.path}": ${
            describeFsError(error)
          }`,
        );
      }
    }
    this.#openLog(parsed.end);
    this.#unseen = false;
    this.#meta = {
      session: header.session,
      group: header.group,
      port: header.port,
    };
    this.#acked = parsed.acked;
    this.#nextSeq = parsed.nextSeq;
    this.#nextBulletin = parsed.nextBulletin;
    this.#bodyStart = parsed.bodyStart;
    this.#firstSeq = header.acked + 1;
    this.#offsets = parsed.offsets;
    const packets: Uint8Array[] = [];
    for (let seq = this.#acked + 1; seq < this.#nextSeq; seq++) {
      const at = this.#offsets[seq - this.#firstSeq]!;
      const length = new DataView(bytes.buffer, at, 4).getUint32(0);
      packets.push(bytes.slice(at + 4, at + 4 + length));
    }
    return {
      meta: { ...this.#meta },
      packets,
      nextSeq: this.#nextSeq,
      nextBulletin: this.#nextBulletin,
      acked: this.#acked,
    };
  }

  /**
   * Starts a new session: an empty log with the session's identity, on disk
   * before this returns.
   *
   * @param meta The session's id, group and port.
   * @throws {JournalError} When the directory holds an unfinished session
   * that {@linkcode Journal.recover} has not been asked for (call it first,
   * and begin only to abandon that session on purpose), or the log cannot be
   * written.
   */
  begin(meta: JournalMeta): void {
    this.#checkOpen();
    const problem = metaProblem(meta);
    if (problem !== null) {
      throw new JournalError(`Cannot begin journal "${this.dir}": ${problem}`);
    }
    if (this.#unseen && this.#exists()) {
      throw new JournalError(
        `Journal "${this.dir}" holds an unfinished session: recover it first`,
      );
    }
    this.#closeLog();
    this.#meta = null;
    const header: Header = { ...meta, acked: 0, nextBulletin: 1 };
    this.#replaceLog(headerRecord(header), "begin");
    this.#unseen = false;
    this.#meta = { session: meta.session, group: meta.group, port: meta.port };
    this.#acked = 0;
    this.#nextSeq = 1;
    this.#nextBulletin = 1;
    this.#firstSeq = 1;
    this.#offsets = [];
  }

  /**
   * Appends encoded DATA frames of the session, which must continue its
   * sequence without a gap, and flushes them to disk (one `fdatasync`).
   *
   * @param packets Encoded DATA frames with sequence numbers `nextSeq`,
   * `nextSeq + 1`, …
   * @throws {JournalError} When no session is current, a packet is not the
   * session's next DATA frame, or the log cannot be written.
   */
  append(packets: Uint8Array[]): void {
    const log = this.#activeLog("append");
    if (packets.length === 0) return;
    let nextBulletin = this.#nextBulletin;
    for (const [i, packet] of packets.entries()) {
      const decoded = decodeFrame(packet);
      const seq = this.#nextSeq + i;
      if (
        decoded.kind !== "frame" || decoded.frame.type !== "data" ||
        decoded.frame.session !== this.#meta!.session ||
        decoded.frame.seq !== seq || packet.length > MAX_JOURNAL_RECORD
      ) {
        throw new JournalError(
          `Cannot append to journal "${this.dir}": packet ${i} is not DATA frame ${seq} of session ${
            this.#meta!.session
          }`,
        );
      }
      for (const record of decoded.frame.records) {
        nextBulletin = Math.max(nextBulletin, record.bulletin + 1);
      }
    }
    const bytes = frameRecords(packets);
    this.#write(log, bytes, true);
    let at = this.#size;
    for (const packet of packets) {
      this.#offsets.push(at);
      at += 4 + packet.length;
    }
    this.#size = at;
    this.#nextSeq += packets.length;
    this.#nextBulletin = nextBulletin;
  }

  /**
   * Records that every receiver has every packet up to `seq`. Packets up to
   * `seq` are dropped from the log when it is next compacted, which happens
   * here when acknowledged records are more than half of the log (and at
   * least {@linkcode JournalOptions.compactAfter} bytes). The mark itself is
   * not flushed: losing it in a crash only means resending packets that
   * receivers will drop as duplicates.
   *
   * @param seq The cumulative acknowledgement; lower than an earlier one is
   * ignored.
   * @throws {JournalError} When no session is current, `seq` was never
   * appended, or the log cannot be written.
   */
  markAcked(seq: number): void {
    const log = this.#activeLog("acknowledge");
    if (!isWhole(seq, 0) || seq >= this.#nextSeq) {
      throw new JournalError(
        `Cannot acknowledge in journal "${this.dir}": packet ${seq} was never appended`,
      );
    }
    if (seq <= this.#acked) return;
    this.#acked = seq;
    const cut = this.#acked + 1 < this.#nextSeq
      ? this.#offsets[this.#acked + 1 - this.#firstSeq]!
      : this.#size;
    const acknowledged = cut - this.#bodyStart;
    if (
      acknowledged >= this.#compactAfter &&
      acknowledged * 2 > this.#size - this.#bodyStart
    ) {
      this.#compact(log, cut);
      return;
    }
    const mark: AckFrame = {
      type: "ack",
      session: this.#meta!.session,
      seq,
      name: MARK_NAME,
      ranges: [],
    };
    const bytes = frameRecords([encodeFrame(mark)]);
    this.#write(log, bytes, false);
    this.#size += bytes.length;
  }

  /**
   * Ends the current session: removes its log, so that the next run starts
   * afresh.
   *
   * @throws {JournalError} When the log cannot be removed.
   */
  finish(): void {
    this.#checkOpen();
    this.#closeLog();
    this.#meta = null;
    try {
      removeIfPresent(this.#temporary);
      removeIfPresent(this.path);
      syncDirectory(this.dir);
    } catch (error) {
      throw new JournalError(
        `Cannot remove journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
    this.#unseen = false;
  }

  /**
   * Closes the log and releases the lock. The session, if unfinished, stays
   * on disk for the next run to recover. Calling it again does nothing.
   */
  close(): void {
    this.#closeLog();
    this.#meta = null;
    const lock = this.#lock;
    if (lock === null) return;
    this.#lock = null;
    try {
      // An empty lock file names no process: the journal was closed cleanly.
      lock.truncateSync(0);
    } catch {
      // The lock is released by closing in any case.
    }
    lock.close();
  }

  /** Closes the journal, for `using journal = Journal.open(dir)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#lock === null) {
      throw new JournalError(`Journal "${this.dir}" is closed`);
    }
  }

  #activeLog(action: string): Deno.FsFile {
    this.#checkOpen();
    if (this.#log === null || this.#meta === null) {
      throw new JournalError(
        `Cannot ${action} in journal "${this.dir}": no session begun or recovered`,
      );
    }
    return this.#log;
  }

  #exists(): boolean {
    try {
      Deno.statSync(this.path);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw new JournalError(
        `Cannot read journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
  }

  #closeLog(): void {
    this.#log?.close();
    this.#log = null;
  }

  #openLog(size: number): void {
    try {
      this.#log = Deno.openSync(this.path, { read: true, append: true });
    } catch (error) {
      throw new JournalError(
        `Cannot open journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
    this.#size = size;
  }

  /**
   * Writes records at the end of the log; on failure, cuts the log back so
   * that no partial record stays in the middle of it.
   */
  #write(log: Deno.FsFile, bytes: Uint8Array, flush: boolean): void {
    try {
      writeAll(log, bytes);
      if (flush) log.syncDataSync();
    } catch (error) {
      try {
        log.truncateSync(this.#size);
      } catch {
        // Recovery cuts a torn tail off anyway.
      }
      throw new JournalError(
        `Cannot write journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
  }

  /** Writes `journal.tmp` with `bytes`, flushes it, renames it over the log. */
  #replaceLog(bytes: Uint8Array, action: string): void {
    try {
      {
        using file = Deno.openSync(this.#temporary, {
          write: true,
          create: true,
          truncate: true,
          mode: 0o600,
        });
        writeAll(file, bytes);
        file.syncDataSync();
      }
      Deno.renameSync(this.#temporary, this.path);
      syncDirectory(this.dir);
    } catch (error) {
      throw new JournalError(
        `Cannot ${action} journal file "${this.path}": ${
          describeFsError(error)
        }`,
      );
    }
    this.#openLog(bytes.length);
    this.#bodyStart = 4 +
      new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  }

  /**
   * Rewrites the log as a new header and the DATA records from offset `cut`
   * (the first unacknowledged one) on, without acknowledgement marks.
   */
  #compact(log: Deno.FsFile, cut: number): void {
    const header = headerRecord({
      ...this.#meta!,
      acked: this.#acked,
      nextBulletin: this.#nextBulletin,
    });
    let tail: Uint8Array;
    try {
      tail = readAt(log, cut, this.#size - cut);
    } catch (error) {
      throw new JournalError(
        `Cannot read journal file "${this.path}": ${describeFsError(error)}`,
      );
    }
    const view = new DataView(tail.buffer);
    const kept = this.#offsets.slice(this.#acked + 1 - this.#firstSeq);
    const offsets: number[] = [];
    const bytes = new Uint8Array(header.length + tail.length);
    bytes.set(header);
    let at = header.length;
    for (const offset of kept) {
      const start = offset - cut;
      const end = start + 4 + view.getUint32(start);
      bytes.set(tail.subarray(start, end), at);
      offsets.push(at);
      at += end - start;
    }
    this.#closeLog();
    this.#replaceLog(bytes.subarray(0, at), "compact");
    this.#offsets = offsets;
    this.#firstSeq = this.#acked + 1;
  }

  /** Parses a whole log; finds where a torn tail starts. */
  #parse(bytes: Uint8Array): {
    header: Header;
    bodyStart: number;
    end: number;
    acked: number;
    nextSeq: number;
    nextBulletin: number;
    offsets: number[];
  } {
    const corrupt = (at: number, why: string): JournalError =>
      new JournalError(
        `Journal file "${this.path}" is corrupt at offset ${at}: ${why}`,
      );
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 4) throw corrupt(0, "no header");
    const headerLength = view.getUint32(0);
    if (headerLength > MAX_HEADER || 4 + headerLength > bytes.length) {
      throw corrupt(0, "no header");
    }
    const header = parseHeader(bytes.subarray(4, 4 + headerLength));
    if (header === null) throw corrupt(0, "not an mcast journal header");
    const bodyStart = 4 + headerLength;
    let acked = header.acked;
    let nextSeq = header.acked + 1;
    let nextBulletin = header.nextBulletin;
    const offsets: number[] = [];
    let at = bodyStart;
    while (at < bytes.length) {
      if (bytes.length - at < 4) break; // torn length
      const length = view.getUint32(at);
      if (length === 0) {
        if (allZero(bytes.subarray(at))) break; // unwritten tail
        throw corrupt(at, "record length 0");
      }
      if (length > MAX_JOURNAL_RECORD) {
        throw corrupt(at, `record length ${length}`);
      }
      if (at + 4 + length > bytes.length) break; // torn record
      const decoded = decodeFrame(bytes.subarray(at + 4, at + 4 + length));
      if (decoded.kind !== "frame") {
        throw corrupt(at, "record is not a frame");
      }
      const frame = decoded.frame;
      if (frame.session !== header.session) {
        throw corrupt(at, `frame of another session ${frame.session}`);
      }
      if (frame.type === "data") {
        if (frame.seq !== nextSeq) {
          throw corrupt(
            at,
            `DATA frame ${frame.seq} where ${nextSeq} was expected`,
          );
        }
        for (const record of frame.records) {
          nextBulletin = Math.max(nextBulletin, record.bulletin + 1);
        }
        offsets.push(at);
        nextSeq++;
      } else if (frame.type === "ack" && frame.name === MARK_NAME) {
        if (frame.seq >= nextSeq) {
          throw corrupt(
            at,
            `acknowledgement of ${frame.seq} before DATA frame ${frame.seq}`,
          );
        }
        acked = Math.max(acked, frame.seq);
      } else {
        throw corrupt(at, `record is not a DATA frame but ${frame.type}`);
      }
      at += 4 + length;
    }
    return {
      header,
      bodyStart,
      end: at,
      acked,
      nextSeq,
      nextBulletin,
      offsets,
    };
  }
}
