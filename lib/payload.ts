/**
 * Loading the sender's payload from `--message`, a file or standard input,
 * bounded to what one datagram carries.
 *
 * @module
 */

import { errorLine, UsageError } from "./errors.ts";
import { MAX_PAYLOAD, type PayloadSource } from "./options.ts";

/** Options of {@linkcode loadPayload}. */
export interface LoadPayloadOptions {
  /** Standard input; defaults to `Deno.stdin.readable`. */
  stdin?: ReadableStream<Uint8Array>;
  /** Opens a file for reading; defaults to `Deno.open`. */
  openFile?: (path: string) => Promise<ReadableStream<Uint8Array>>;
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
    return "read permission not granted (run with --allow-read)";
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
  let stream: ReadableStream<Uint8Array>;
  let what: string;
  if (source.kind === "stdin") {
    stream = options.stdin ?? Deno.stdin.readable;
    what = "standard input";
  } else {
    what = `file "${source.path}"`;
    try {
      stream = await (options.openFile ?? openDenoFile)(source.path);
    } catch (error) {
      throw new UsageError(
        `Cannot read file "${source.path}": ${describeReadError(error)}`,
      );
    }
  }
  let result: { bytes: Uint8Array; size: number };
  try {
    result = await readBounded(stream, MAX_PAYLOAD);
  } catch (error) {
    throw new UsageError(`Cannot read ${what}: ${describeReadError(error)}`);
  }
  if (result.size > MAX_PAYLOAD) {
    throw new UsageError(
      `Payload from ${what} is too large: more than ${MAX_PAYLOAD} bytes (one datagram carries at most ${MAX_PAYLOAD})`,
    );
  }
  return result.bytes;
}
