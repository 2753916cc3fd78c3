/**
 * The names of the I/O paths, apart from the code that opens them (so that
 * option parsing needs nothing else).
 *
 * @module
 */

/**
 * What `--io` asks for: `native` (Linux: libc sockets with batched system
 * calls, OpenSSL's libcrypto), `deno` (the runtime's `listenDatagram` and
 * WebCrypto, on every platform), or `auto` (native where it loads, else
 * deno).
 */
export type IoChoice = "auto" | "native" | "deno";

/** The values `--io` accepts, in the order the help lists them. */
export const IO_CHOICES: readonly IoChoice[] = ["auto", "native", "deno"];

/** The path an endpoint actually takes. */
export type IoPath = "native" | "deno";
