/**
 * Loading the sender's payload from `--message`, a file or standard input,
 * bounded to what one datagram carries.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  errorLine,
  McastError,
  permissionHint,
  UsageError,
} from "../errors.ts";
import type { BulletinBody } from "../reliable/sender.ts";
import { MAX_PAYLOAD, type PayloadSource } from "./options.ts";

/** Options of {@linkcode loadPayload}. */
export interface LoadPayloadOptions {
  /** Standard input; defaults to `Deno.stdin.readable`. */
  stdin?: ReadableStream<Uint8Array>;
  /** Opens a file for reading; defaults to `Deno.open`. */
  openFile?: (path: string) => Promise<ReadableStream<Uint8Array>>;
  /** Largest payload, in bytes; defaults to one datagram's. */
  limit?: number;
  /** Names the limit in the error message; defaults to one datagram. */
  limitName?: string;
}

async function readBounded(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array; size: number }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    while (size <= limit) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, limit + 1));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
  }
  return { bytes, size };
}

/**
 * Reads a regular file whole into one buffer of its size (a 100 MB file in
 * one allocation and a few large reads, not thousands of 64 KiB chunks).
 * Returns `undefined` when the file is not a regular file or grew while
 * being read: the stream path handles those.
 */
async function readRegularFile(
  path: string,
  limit: number,
): Promise<{ bytes: Uint8Array; size: number } | undefined> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (!info.isFile) return undefined;
  if (info.size > limit) return { bytes: new Uint8Array(0), size: info.size };
  // One byte more than the size tells a file that grew.
  const bytes = new Uint8Array(info.size + 1);
  let size = 0;
  while (size < bytes.length) {
    const n = await file.read(bytes.subarray(size));
    if (n === null) break;
    size += n;
  }
  if (size > info.size) return undefined;
  return { bytes: bytes.subarray(0, size), size };
}

/** Files at least this large are sent from the file, a piece at a time. */
export const FILE_BODY_THRESHOLD = 4 * 1024 * 1024;

/** A {@linkcode BulletinBody} read from an open file; close it when done. */
export interface FileBody extends BulletinBody {
  /** Closes the file (again: nothing). */
  close(): void;
}

/** Options of {@linkcode openFileBody}. */
export interface OpenFileBodyOptions {
  /** Largest size, in bytes. */
  limit: number;
  /** Names the limit in the error message. */
  limitName: string;
}

/**
 * Opens a large regular file to be sent in pieces (a reliable `--file` of
 * at least {@linkcode FILE_BODY_THRESHOLD} bytes): it is read twice, once
 * for its hash and once as it is sent, and never held whole in memory.
 *
 * @param path The file.
 * @param options Its largest size and how the error names it.
 * @returns The body, or `undefined` for a smaller or not regular file.
 * @throws {UsageError} When it cannot be read or is too large.
 */
export async function openFileBody(
  path: string,
  options: OpenFileBodyOptions,
): Promise<FileBody | undefined> {
  let file: Deno.FsFile;
  let size: number;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new UsageError(
      `Cannot read file "${path}": ${describeReadError(error)}`,
    );
  }
  try {
    const info = await file.stat();
    size = info.size;
    if (!info.isFile || size < FILE_BODY_THRESHOLD) {
      file.close();
      return undefined;
    }
  } catch (error) {
    file.close();
    throw new UsageError(
      `Cannot read file "${path}": ${describeReadError(error)}`,
    );
  }
  if (size > options.limit) {
    file.close();
    throw new UsageError(
      `Payload from file "${path}" is too large: more than ${options.limit} bytes (${options.limitName})`,
    );
  }
  return new OpenFileBody(file, path, size);
}

class OpenFileBody implements FileBody {
  readonly size: number;
  readonly #file: Deno.FsFile;
  readonly #path: string;
  #position = 0;
  #open = true;

  constructor(file: Deno.FsFile, path: string, size: number) {
    this.#file = file;
    this.#path = path;
    this.size = size;
  }

  sha256(): Promise<Uint8Array> {
    const hash = createHash("sha256");
    const piece = new Uint8Array(Math.min(this.size, 1024 * 1024));
    for (let at = 0; at < this.size; at += piece.length) {
      const part = piece.subarray(0, Math.min(piece.length, this.size - at));
      this.read(at, part);
      hash.update(part);
    }
    return Promise.resolve(new Uint8Array(hash.digest()));
  }

  read(offset: number, into: Uint8Array): void {
    try {
      if (offset !== this.#position) {
        this.#file.seekSync(offset, Deno.SeekMode.Start);
        this.#position = offset;
      }
      let done = 0;
      while (done < into.length) {
        const n = this.#file.readSync(into.subarray(done));
        if (n === null) {
          throw new McastError(
            `File "${this.#path}" changed while being sent: it ends before ${this.size} bytes`,
            1,
          );
        }
        done += n;
        this.#position += n;
      }
    } catch (error) {
      if (error instanceof McastError) throw error;
      throw new McastError(
        `Cannot read file "${this.#path}": ${describeReadError(error)}`,
        1,
      );
    }
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#file.close();
  }
}

async function openDenoFile(path: string): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.isDirectory) {
    file.close();
    throw new Error("is a directory");
  }
  return file.readable;
}

function describeReadError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return `read ${permissionHint(error, "--allow-read")}`;
  }
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return errorLine(error);
}

/**
 * Loads the payload bytes. Text is encoded as UTF-8; files and standard input
 * are read as raw bytes, stopping as soon as they exceed one datagram.
 *
 * @param source Where the payload comes from.
 * @param options Injected standard input and file opener, for tests.
 * @returns The payload.
 * @throws {UsageError} When the file cannot be read or the payload is too large.
 */
export async function loadPayload(
  source: PayloadSource,
  options: LoadPayloadOptions = {},
): Promise<Uint8Array> {
  if (source.kind === "text") return new TextEncoder().encode(source.text);
  const limit = options.limit ?? MAX_PAYLOAD;
  let result: { bytes: Uint8Array; size: number } | undefined;
  let what = `file "${source.kind === "file" ? source.path : ""}"`;
  try {
    if (source.kind === "file" && options.openFile === undefined) {
      result = await readRegularFile(source.path, limit);
    }
  } catch (error) {
    throw new UsageError(`Cannot read ${what}: ${describeReadError(error)}`);
  }
  if (result === undefined) {
    const opened = await openPayload(source, options);
    what = opened.what;
    try {
      result = await readBounded(opened.stream, limit);
    } catch (error) {
      throw new UsageError(`Cannot read ${what}: ${describeReadError(error)}`);
    }
  }
  if (result.size > limit) {
    const name = options.limitName ??
      `one datagram carries at most ${MAX_PAYLOAD}`;
    throw new UsageError(
      `Payload from ${what} is too large: more than ${limit} bytes (${name})`,
    );
  }
  return result.bytes;
}

async function openPayload(
  source: PayloadSource & { kind: "stdin" | "file" },
  options: LoadPayloadOptions,
): Promise<{ stream: ReadableStream<Uint8Array>; what: string }> {
  if (source.kind === "stdin") {
    return {
      stream: options.stdin ?? Deno.stdin.readable,
      what: "standard input",
    };
  }
  try {
    return {
      stream: await (options.openFile ?? openDenoFile)(source.path),
      what: `file "${source.path}"`,
    };
  } catch (error) {
    throw new UsageError(
      `Cannot read file "${source.path}": ${describeReadError(error)}`,
    );
  }
}

/**
 * Reads bulletins one per line (`--lines`): every line, without its `\n`
 * (and a `\r` before it), is one bulletin; a last line without a newline
 * counts too. Lines are yielded as soon as they are complete, so a feed
 * piped in is sent line by line.
 *
 * @param source A file or standard input (text yields its lines).
 * @param options Standard input, file opener and the largest line (`limit`).
 * @returns The lines, as bytes.
 * @throws {UsageError} When the input cannot be read or a line is too long;
 * lines before it have been yielded.
 */
export async function* readLines(
  source: PayloadSource,
  options: LoadPayloadOptions = {},
): AsyncGenerator<Uint8Array> {
  yield* await openLines(source, options);
}

/**
 * Like {@linkcode readLines}, but opens the file first, so that a missing or
 * unreadable file fails before anything else happens.
 *
 * @param source A file or standard input (text yields its lines).
 * @param options Standard input, file opener and the largest line (`limit`).
 * @returns The lines, as bytes.
 * @throws {UsageError} When the file cannot be opened (reading errors and
 * too-long lines are thrown by the returned generator).
 */
export async function openLines(
  source: PayloadSource,
  options: LoadPayloadOptions = {},
): Promise<AsyncGenerator<Uint8Array>> {
  const limit = options.limit ?? MAX_PAYLOAD;
  if (source.kind === "text") return textLines(source.text);
  const { stream, what } = await openPayload(source, options);
  return streamLines(stream, what, limit);
}

async function* textLines(text: string): AsyncGenerator<Uint8Array> {
  const lines = text.replace(/\r?\n$/, "").split(/\r?\n/);
  yield* lines.map((line) => new TextEncoder().encode(line));
}

async function* streamLines(
  stream: ReadableStream<Uint8Array>,
  what: string,
  limit: number,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  // The line read so far, in the pieces it came in: joined once, when its
  // end arrives, so that a long line costs one copy, not one per chunk.
  let parts: Uint8Array[] = [];
  let size = 0;
  let number = 0;
  function line(): Uint8Array {
    const bytes = concat(parts, size);
    parts = [];
    size = 0;
    const end = bytes.at(-1) === 13 ? bytes.length - 1 : bytes.length;
    checkLine(end, number, what, limit);
    return bytes.subarray(0, end);
  }
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new UsageError(
          `Cannot read ${what}: ${describeReadError(error)}`,
        );
      }
      if (chunk.done) break;
      const bytes = chunk.value;
      let start = 0;
      for (let at = bytes.indexOf(10); at >= 0; at = bytes.indexOf(10, start)) {
        parts.push(bytes.subarray(start, at));
        size += at - start;
        number += 1;
        yield line();
        start = at + 1;
      }
      if (start < bytes.length) {
        parts.push(bytes.subarray(start));
        size += bytes.length - start;
      }
      // A "\r" may be the first half of the line's "\r\n".
      const cr = parts.at(-1)?.at(-1) === 13 ? 1 : 0;
      checkLine(size - cr, number + 1, what, limit);
    }
    if (size > 0) {
      number += 1;
      yield line();
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Joins pieces into one new array of `size` bytes. */
function concat(parts: Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

function checkLine(
  size: number,
  number: number,
  what: string,
  limit: number,
): void {
  if (size > limit) {
    throw new UsageError(
      `Line ${number} of ${what} is too large: more than ${limit} bytes (--max-size)`,
    );
  }
}
