/**
 * A private multi-host network for tests, made of Linux network namespaces:
 * three hosts (`s`, `r1`, `r2`; more receivers on request: `r3`, ...), each
 * with one veth link to a bridge that lives in a namespace of its own. Nothing is created in the machine's own
 * namespace: each veth pair is created directly with one end in a host
 * namespace and the other in the bridge namespace, so deleting the
 * namespaces removes every link, and no traffic can reach a real network.
 *
 * Addresses come from TEST-NET-2 (198.51.100.0/24, host namespaces only) and
 * IPv6 link-local addresses, with duplicate address detection off so that
 * they are usable at once. No route besides the connected /24 is needed: on
 * Linux a socket bound to an interface address sends its IPv4 multicast out
 * of that interface, and every IPv6 link up gets an `ff00::/8` route.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Longest any single `ip` or `sysctl` command may run. */
const COMMAND_TIMEOUT_MS = 5_000;

/** Longest to wait for the IPv6 link-local addresses to become usable. */
const ADDRESS_TIMEOUT_MS = 5_000;

/** What a namespace name of this module looks like: `mcast<pid><role>`. */
const NAME_PATTERN = /^mcast([0-9]+)(s|r[0-9]+|br)$/;

/** Most receiving hosts {@linkcode createLab} makes (198.51.100.2-.9). */
export const MAX_LAB_RECEIVERS = 8;

/** One host of the test network. */
export interface Host {
  /** Namespace name, for `ip netns exec`. */
  ns: string;
  /** Name of the host's link to the bridge, e.g. `veth-r1`. */
  link: string;
  /** Interface index of that link inside the namespace. */
  index: number;
  /** IPv4 address of the link (198.51.100.0/24). */
  ipv4: string;
  /** IPv6 link-local address of the link (no zone). */
  ipv6: string;
  /**
   * Name of the other end of the host's link: the bridge's port, in the
   * bridge namespace ({@linkcode Lab.bridge}), e.g. `port-r1`. Queueing
   * disciplines on it shape what the bridge sends to the host; setting it
   * down cuts the host off as a pulled cable would.
   */
  bridgePort: string;
}

/** The test network; disposing it deletes every namespace it created. */
export interface Lab extends AsyncDisposable {
  /** The sending host, 198.51.100.1. */
  sender: Host;
  /**
   * The receiving hosts, 198.51.100.2 and 198.51.100.3 (then .4, ... when
   * more were asked for).
   */
  receivers: [Host, Host, ...Host[]];
  /** The namespace of the bridge `br0` and its ports. */
  bridge: string;
  /** Every namespace created, bridge included. */
  namespaces: string[];
  /**
   * With {@linkcode LabOptions.routed}: a host on a network of its own
   * (198.51.100.201/30, namespace `…r9`) behind the last receiver, which
   * routes unicast between it and the bridge's hosts (no multicast routing:
   * the kernel has none here). Unicast between it and the others crosses
   * one router, so it is 2 hops away.
   */
  routed?: Host;
}

/** Options of {@linkcode createLab}. */
export interface LabOptions {
  /**
   * How many receiving hosts, 2 to {@linkcode MAX_LAB_RECEIVERS} (default
   * 2).
   */
  receivers?: number;
  /** Add {@linkcode Lab.routed}, a host behind a router (default false). */
  routed?: boolean;
}

/** Output of one finished command. */
interface CommandResult {
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killing it after {@linkcode COMMAND_TIMEOUT_MS}. */
async function run(program: string, args: string[]): Promise<CommandResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), COMMAND_TIMEOUT_MS);
  try {
    const output = await new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    const decoder = new TextDecoder();
    return {
      success: output.success,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    return { success: false, stdout: "", stderr: String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `program` with the words of `command` (names here never contain
 * spaces); throws with its error output when it fails.
 */
async function runWords(program: string, command: string): Promise<string> {
  const args = command.split(" ");
  const result = await run(program, args);
  if (!result.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed: ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/**
 * Runs `ip` with the words of `command`, e.g. `-n mcast1br link set
 * port-r1 down` (names here never contain spaces); killed after 5 s. Only
 * for the namespaces of a {@linkcode Lab}: always pass `-n NAMESPACE`.
 *
 * @param command The arguments, separated by single spaces.
 * @returns Its standard output.
 * @throws {Error} With its error output when it fails.
 */
export function ip(command: string): Promise<string> {
  return runWords("ip", command);
}

/**
 * Runs `tc` with the words of `command`, e.g. `-n mcast1br qdisc add dev
 * port-r1 root tbf rate 4mbit burst 4kb latency 20ms`; killed after 5 s.
 * Only for the namespaces of a {@linkcode Lab}: always pass `-n NAMESPACE`.
 *
 * @param command The arguments, separated by single spaces.
 * @returns Its standard output.
 * @throws {Error} With its error output when it fails.
 */
export function tc(command: string): Promise<string> {
  return runWords("tc", command);
}

/**
 * The `spawnTool` option that runs a tool inside namespace `ns`.
 *
 * @param ns The namespace.
 * @returns `{ prefix: ["ip", "netns", "exec", ns] }`.
 */
export function inNs(ns: string): { prefix: string[] } {
  return { prefix: ["ip", "netns", "exec", ns] };
}

/** Names of the namespaces `ip netns list` shows. */
export async function listNamespaces(): Promise<string[]> {
  const text = await ip("netns list");
  return text.split("\n").map((line) => line.split(" ")[0]!).filter((name) =>
    name !== ""
  );
}

/**
 * Tells why the namespace tests cannot run here.
 *
 * @returns The reason, or `undefined` when this process is root and
 * `ip netns` works.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  const result = await run("ip", ["netns", "list"]);
  if (!result.success) {
    return `"ip netns list" failed: ${
      result.stderr.trim() || "ip is not installed"
    }`;
  }
  return undefined;
}

/**
 * Whether process `pid` still runs (its `/proc` entry exists).
 *
 * @param pid The process id.
 * @returns True while it runs.
 */
export function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kills (SIGKILL) every process that runs inside namespace `ns`.
 *
 * @param ns The namespace.
 */
export async function killInside(ns: string): Promise<void> {
  const pids = await run("ip", ["netns", "pids", ns]);
  for (
    const pid of pids.stdout.split("\n").filter((p) => /^[0-9]+$/.test(p))
  ) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/**
 * Deletes namespaces that an earlier, killed test run left behind: only
 * names that match `pattern` (its first group is the test process's pid)
 * and whose process is gone. The tools that run still inside them
 * (started by that run) are killed first.
 *
 * @param pattern A module's namespace names, e.g. `/^mcast([0-9]+)g[amb]$/`.
 */
export async function removeStaleNamespaces(pattern: RegExp): Promise<void> {
  for (const name of await listNamespaces()) {
    const match = pattern.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    await killInside(name);
    await run("ip", ["netns", "delete", name]);
  }
}

async function sysctl(ns: string, ...settings: string[]): Promise<void> {
  await ip(`netns exec ${ns} sysctl -q -w ${settings.join(" ")}`);
}

interface AddressInfo {
  ifindex: number;
  "addr_info": {
    family: string;
    local: string;
    scope: string;
    tentative?: boolean;
  }[];
}

/** Reads a link's index and addresses inside a namespace. */
async function linkInfo(ns: string, link: string): Promise<AddressInfo> {
  const [info] = JSON.parse(
    await ip(`-n ${ns} -j addr show dev ${link}`),
  ) as AddressInfo[];
  if (!info) throw new Error(`no link ${link} in ${ns}`);
  return info;
}

/** Polls until the link has a usable (not tentative) IPv6 link-local address. */
async function waitForLinkLocal(
  ns: string,
  link: string,
): Promise<{ index: number; ipv6: string }> {
  const deadline = Date.now() + ADDRESS_TIMEOUT_MS;
  while (true) {
    const info = await linkInfo(ns, link);
    const address = info.addr_info.find((a) =>
      a.family === "inet6" && a.scope === "link" && !a.tentative
    );
    if (address) return { index: info.ifindex, ipv6: address.local };
    if (Date.now() > deadline) {
      throw new Error(`${link} in ${ns} got no usable link-local address`);
    }
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

async function deleteAll(namespaces: string[]): Promise<void> {
  const failures: string[] = [];
  for (const name of namespaces) {
    const result = await run("ip", ["netns", "delete", name]);
    if (!result.success) failures.push(`${name}: ${result.stderr.trim()}`);
  }
  if (failures.length > 0) {
    throw new Error(`cannot delete namespaces: ${failures.join("; ")}`);
  }
}

/**
 * Creates the test network. Every namespace is deleted again by disposing
 * the result (`await using lab = await createLab()`), and right away when
 * the setup itself fails.
 *
 * Hosts `s` and `r2` get an extra veth pair (`pad0`/`pad1`, both ends in the
 * host) before their bridge link, so that their link's interface index
 * differs from r1's (tests can then tell the indexes apart). In `s` the pair
 * is up and holds the first IPv6 `ff00::/8` routes: a group datagram that
 * the sender does not pin to its link leaves by that pair (measured here for
 * ff05::) and never reaches the receivers.
 *
 * @param options How many receiving hosts (default 2).
 * @returns The network.
 */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const count = options.receivers ?? 2;
  if (
    !Number.isInteger(count) || count < 2 || count > MAX_LAB_RECEIVERS
  ) {
    throw new RangeError(
      `a lab has 2 to ${MAX_LAB_RECEIVERS} receivers, not ${count}`,
    );
  }
  await removeStaleNamespaces(NAME_PATTERN);
  const prefix = `mcast${Deno.pid}`;
  const bridgeNs = `${prefix}br`;
  const roles = [
    "s",
    ...Array.from({ length: count }, (_, i) => `r${i + 1}`),
  ];
  const created: string[] = [];
  try {
    for (const name of [...roles.map((role) => `${prefix}${role}`), bridgeNs]) {
      await ip(`netns add ${name}`);
      created.push(name);
    }
    // A plain switch: no multicast snooping, so it floods every group.
    await ip(`-n ${bridgeNs} link add br0 type bridge mcast_snooping 0`);
    await ip(`-n ${bridgeNs} link set br0 up`);
    const links: {
      ns: string;
      link: string;
      ipv4: string;
      bridgePort: string;
    }[] = [];
    for (const [i, role] of roles.entries()) {
      const ns = `${prefix}${role}`;
      const link = `veth-${role}`;
      const ipv4 = `198.51.100.${i + 1}`;
      await sysctl(
        ns,
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
      );
      await ip(`-n ${ns} link set lo up`);
      if (role === "s" || role === "r2") {
        // A veth pair with both ends in the host: down in r2 (it only shifts
        // the index), up in s, where it holds the first IPv6 multicast route
        // and so would carry any group datagram not pinned to veth-s.
        await ip(`-n ${ns} link add pad0 type veth peer name pad1`);
        if (role === "s") {
          await ip(`-n ${ns} link set pad0 up`);
          await ip(`-n ${ns} link set pad1 up`);
        }
      }
      await ip(
        `link add ${link} netns ${ns} type veth peer name port-${role} netns ${bridgeNs}`,
      );
      await ip(`-n ${bridgeNs} link set port-${role} master br0`);
      await ip(`-n ${bridgeNs} link set port-${role} up`);
      await ip(`-n ${ns} addr add ${ipv4}/24 dev ${link}`);
      await ip(`-n ${ns} link set ${link} up`);
      links.push({ ns, link, ipv4, bridgePort: `port-${role}` });
    }
    const hosts: Host[] = [];
    for (const { ns, link, ipv4, bridgePort } of links) {
      hosts.push({
        ns,
        link,
        ipv4,
        ...await waitForLinkLocal(ns, link),
        bridgePort,
      });
    }
    let routed: Host | undefined;
    if (options.routed) {
      const router = hosts[hosts.length - 1]!;
      const ns = `${prefix}r9`;
      await ip(`netns add ${ns}`);
      created.push(ns);
      await sysctl(
        ns,
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
      );
      await ip(`-n ${ns} link set lo up`);
      await ip(
        `link add veth-r9 netns ${ns} type veth peer name rt-r9 netns ${router.ns}`,
      );
      await ip(`-n ${router.ns} addr add 198.51.100.202/30 dev rt-r9`);
      await ip(`-n ${router.ns} link set rt-r9 up`);
      await sysctl(router.ns, "net.ipv4.ip_forward=1");
      await ip(`-n ${ns} addr add 198.51.100.201/30 dev veth-r9`);
      await ip(`-n ${ns} link set veth-r9 up`);
      await ip(`-n ${ns} route add default via 198.51.100.202`);
      for (const host of hosts.slice(0, -1)) {
        await ip(
          `-n ${host.ns} route add 198.51.100.200/30 via ${router.ipv4}`,
        );
      }
      routed = {
        ns,
        link: "veth-r9",
        ipv4: "198.51.100.201",
        ...await waitForLinkLocal(ns, "veth-r9"),
        bridgePort: "rt-r9",
      };
    }
    return {
      sender: hosts[0]!,
      receivers: [hosts[1]!, hosts[2]!, ...hosts.slice(3)],
      bridge: bridgeNs,
      namespaces: [...created],
      ...(routed === undefined ? {} : { routed }),
      async [Symbol.asyncDispose]() {
        await deleteAll(created);
      },
    };
  } catch (error) {
    await deleteAll(created).catch(() => {});
    throw error;
  }
}

/**
 * Runs `body` with a fresh network ({@linkcode createLab}), then checks that
 * its namespaces are gone.
 *
 * @param body The test, given the network.
 * @param options The network's hosts.
 */
export async function withLab(
  body: (lab: Lab) => Promise<void>,
  options: LabOptions = {},
): Promise<void> {
  let namespaces: string[] = [];
  {
    await using lab = await createLab(options);
    namespaces = lab.namespaces;
    await body(lab);
  }
  const left = (await listNamespaces()).filter((name) =>
    namespaces.includes(name)
  );
  assert.deepEqual(left, [], "the test's namespaces were not deleted");
}
