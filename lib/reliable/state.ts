/**
 * The reliable receiver's state file (`mcast-recv --state FILE`): which
 * session it follows, where to resume and which bulletin it delivered last,
 * so that a restarted receiver neither repeats nor misses a bulletin.
 *
 * The file is one line of JSON, for example
 * `{"version":1,"session":"0123456789abcdef","next":42,"delivered":17,"name":"desk-3f9a"}`.
 * A receiver that follows several sessions at once adds the positions of
 * the others, `"sessions":[{"session":…,"next":…,"delivered":…}]`, after
 * the name (the first fields are the session that delivered last); a file
 * without them is a receiver that followed one session.
 * {@linkcode saveState} replaces it atomically: it writes `FILE.tmp`, flushes
 * it to disk and renames it over `FILE`, so a crash at any point (SIGKILL or
 * power loss) leaves either the old or the new state, never a torn file. A
 * leftover `FILE.tmp` is ignored by {@linkcode loadState} and overwritten by
 * the next save.
 *
 * Both functions are synchronous on purpose: the receiver saves between
 * delivering batches and must not deliver more before the save is done.
 *
 * @module
 */

import { errorLine, McastError, permissionHint } from "../errors.ts";
import { MAX_NAME_BYTES } from "../wire/frame.ts";

/** The state file format this module reads and writes. */
export const STATE_VERSION = 1;

/** Where a receiver stands in one session. */
export interface SessionPosition {
  /** The sender session: 16 lowercase hex digits. */
  session: string;
  /** The first sequence number not yet fully processed (1 or more). */
  next: number;
  /** The highest bulletin number delivered (0: none yet). */
  delivered: number;
}

/** Most sessions a state file holds positions of. */
export const MAX_STATE_SESSIONS = 64;

/** What a receiver remembers across restarts. */
export interface ReceiverState {
  /** Format version: always {@linkcode STATE_VERSION}. */
  version: 1;
  /** The sender session it follows: 16 lowercase hex digits. */
  session: string;
  /**
   * The first sequence number not yet fully processed: a restarted receiver
   * resumes here (1 or more).
   */
  next: number;
  /** The highest bulletin number delivered (0: none yet). */
  delivered: number;
  /** The receiver's name, so that a restart keeps it (1-64 bytes of UTF-8). */
  name: string;
  /** The positions in the other sessions it follows, if any. */
  sessions?: SessionPosition[];
}

/**
 * A state file cannot be read, is corrupt or has another format version, or
 * cannot be written. Exit status 1.
 */
export class StateError extends McastError {
  /**
   * Creates the error.
   *
   * @param message What failed, in one line naming the file.
   */
  constructor(message: string) {
    super(message, 1);
    this.name = "StateError";
  }
}

const SESSION_PATTERN = /^[0-9a-f]{16}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return permissionHint(error, "--allow-read and --allow-write");
  }
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return errorLine(error);
}

/**
 * Returns why `value` is not a valid state, or null when it is one.
 *
 * @param value Anything, typically parsed JSON.
 * @returns A short reason, or null.
 */
function invalidReason(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "not a JSON object";
  }
  const record = value as Record<string, unknown>;
  const why = invalidPosition(record);
  if (why !== null) return why;
  const { name, sessions } = record;
  if (typeof name !== "string") return `"name" must be a string`;
  const size = encoder.encode(name).length;
  if (size < 1 || size > MAX_NAME_BYTES) {
    return `"name" must be 1-${MAX_NAME_BYTES} bytes of UTF-8`;
  }
  if (sessions === undefined) return null;
  if (!Array.isArray(sessions) || sessions.length > MAX_STATE_SESSIONS) {
    return `"sessions" must be a list of at most ${MAX_STATE_SESSIONS} positions`;
  }
  for (const position of sessions) {
    if (
      typeof position !== "object" || position === null ||
      Array.isArray(position)
    ) {
      return `"sessions" must hold JSON objects`;
    }
    const inner = invalidPosition(position as Record<string, unknown>);
    if (inner !== null) return `in "sessions": ${inner}`;
  }
  return null;
}

/** Why a record is not a session position, or null when it is one. */
function invalidPosition(record: Record<string, unknown>): string | null {
  const { session, next, delivered } = record;
  if (typeof session !== "string" || !SESSION_PATTERN.test(session)) {
    return `"session" must be 16 lowercase hex digits`;
  }
  if (typeof next !== "number" || !Number.isSafeInteger(next) || next < 1) {
    return `"next" must be a whole number from 1 to 2^53-1`;
  }
  if (
    typeof delivered !== "number" || !Number.isSafeInteger(delivered) ||
    delivered < 0
  ) {
    return `"delivered" must be a whole number from 0 to 2^53-1`;
  }
  return null;
}

/** A position's own fields, in the file's order. */
function positionOf(position: SessionPosition): SessionPosition {
  return {
    session: position.session,
    next: position.next,
    delivered: position.delivered,
  };
}

/**
 * Reads a receiver's state file.
 *
 * @param path The state file.
 * @returns The saved state, or null when the file does not exist (a first
 * run).
 * @throws {StateError} When the file cannot be read, is not a valid state or
 * has another format version.
 */
export function loadState(path: string): ReceiverState | null {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new StateError(
      `Cannot read state file "${path}": ${describeFsError(error)}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new StateError(`State file "${path}" is corrupt: not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new StateError(`State file "${path}" is corrupt: not a JSON object`);
  }
  if (!("version" in value)) {
    throw new StateError(
      `State file "${path}" is corrupt: "version" is missing`,
    );
  }
  if (value.version !== STATE_VERSION) {
    throw new StateError(
      `State file "${path}" has format version ${
        JSON.stringify(value.version)
      }; this mcast reads version ${STATE_VERSION}`,
    );
  }
  const why = invalidReason(value);
  if (why !== null) {
    throw new StateError(`State file "${path}" is corrupt: ${why}`);
  }
  const state = value as ReceiverState;
  const loaded: ReceiverState = {
    version: STATE_VERSION,
    session: state.session,
    next: state.next,
    delivered: state.delivered,
    name: state.name,
  };
  if (state.sessions) loaded.sessions = state.sessions.map(positionOf);
  return loaded;
}

/**
 * Replaces a receiver's state file atomically: writes `PATH.tmp`, flushes
 * its data to disk, then renames it over `PATH`. A crash at any point leaves
 * the old or the new state, never a torn file. (The directory is not
 * flushed: after a power loss the old state may come back, which is
 * consistent but older.)
 *
 * @param path The state file.
 * @param state What to remember.
 * @throws {StateError} When the state is invalid or the file cannot be
 * written.
 */
export function saveState(path: string, state: ReceiverState): void {
  const why = state.version === STATE_VERSION
    ? invalidReason(state)
    : `"version" must be ${STATE_VERSION}`;
  if (why !== null) {
    throw new StateError(`Cannot save state file "${path}": ${why}`);
  }
  const text = JSON.stringify({
    version: STATE_VERSION,
    session: state.session,
    next: state.next,
    delivered: state.delivered,
    name: state.name,
    ...(state.sessions?.length
      ? { sessions: state.sessions.map(positionOf) }
      : {}),
  }) + "\n";
  const bytes = encoder.encode(text);
  const temporary = `${path}.tmp`;
  try {
    const file = Deno.openSync(temporary, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      let written = 0;
      while (written < bytes.length) {
        written += file.writeSync(bytes.subarray(written));
      }
      file.syncDataSync();
    } finally {
      file.close();
    }
    Deno.renameSync(temporary, path);
  } catch (error) {
    throw new StateError(
      `Cannot write state file "${path}": ${describeFsError(error)}`,
    );
  }
}
