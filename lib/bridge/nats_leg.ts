/**
 * The `nats://` leg of `mcast-bridge`: a broker between sites without a
 * multicast path (`--to nats://HOST:PORT/SUBJECT[?stream=NAME]` near the
 * sender, `--from` the same URL at the far site). The URL is checked when
 * the command line is read; the NATS client is loaded only when the leg is
 * opened (`nats_pipe.ts`), so that the other tools never load it.
 *
 * @module
 */

import { McastError } from "../errors.ts";
import type { PipeContext, PipeScheme } from "./legs.ts";
import type { PipeSink, PipeSource } from "./pipe.ts";
import { durableName, parseNatsUrl } from "./nats_url.ts";
import { TunnelAuth } from "./tunnel.ts";

/**
 * With a group key, the far receivers' reports that travel back through
 * the broker are sealed as the tunnel's frames are (HMAC with a key from
 * the group key, and a send time): someone who may publish on the broker
 * cannot make the sender believe a far receiver has everything.
 */
function reportAuth(context: PipeContext): { reportAuth?: TunnelAuth } {
  if (!context.key) return {};
  return {
    reportAuth: new TunnelAuth(context.key, {
      ...(context.crypto ? { crypto: context.crypto } : {}),
      ...(context.maxSkewMs === undefined
        ? {}
        : { maxSkewMs: context.maxSkewMs }),
    }),
  };
}

/** How the bridge opens `nats://` legs (see `nats_pipe.ts`). */
export const NATS_SCHEME: PipeScheme = {
  check(url: URL): string | undefined {
    try {
      parseNatsUrl(url.href);
      return undefined;
    } catch (error) {
      if (error instanceof McastError) return error.message;
      throw error;
    }
  },
  async openSink(context: PipeContext): Promise<PipeSink> {
    const { openNatsSink } = await import("./nats_pipe.ts");
    return await openNatsSink(context.url.href, reportAuth(context));
  },
  async openSource(context: PipeContext): Promise<PipeSource> {
    const { openNatsSource } = await import("./nats_pipe.ts");
    // The far site's durable consumer is the bridge's name (unless the URL
    // names one): a restarted bridge of that name resumes where it stopped.
    return await openNatsSource(context.url.href, {
      durable: parseNatsUrl(context.url.href).durable ??
        durableName(context.name),
      ...reportAuth(context),
    });
  },
};
