// The typed, validated settings of `tsmesh iptables`: what to capture (RedirectConfig) and how
// to run (IptablesOptions). Built only by flags.ts; everything downstream trusts these values.

/** `*` (everything) or an explicit list, which may be empty (nothing). */
export type AllOr<T> = '*' | readonly T[];

/** A validated CIDR block; `text` is what goes into the ruleset, e.g. `10.0.0.0/8`, `fd00::/8`. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly text: string;
}

/** What the rules capture. Lists are deduplicated and in the order the user gave them. */
export interface RedirectConfig {
  /** Traffic of this uid is the proxy's own and is never captured. */
  readonly proxyUid: number;
  /** Traffic of this gid is the proxy's own and is never captured. */
  readonly proxyGid: number;
  /** REDIRECT target for outgoing TCP. */
  readonly outboundPort: number;
  /** REDIRECT target for incoming TCP. */
  readonly inboundPort: number;
  readonly excludeOutboundPorts: AllOr<number>;
  readonly excludeInboundPorts: AllOr<number>;
  readonly includeInboundPorts: AllOr<number>;
  readonly excludeOutboundIpRanges: AllOr<Cidr>;
  readonly includeOutboundIpRanges: AllOr<Cidr>;
}

export type Ipv6Mode = 'auto' | 'on' | 'off';

export interface IptablesOptions {
  /** `apply` installs the rules; `cleanup` removes every TSMESH_ chain and every jump to one. */
  readonly mode: 'apply' | 'cleanup';
  /** Print the iptables-restore input instead of running it. */
  readonly dryRun: boolean;
  /** Whether to program ip6tables too; `auto` does when the netns has a global IPv6 address. */
  readonly ipv6: Ipv6Mode;
  readonly redirect: RedirectConfig;
}

/** Ports 15000-15099 of a pod belong to the mesh and are never captured, in either direction. */
export const MESH_RESERVED_PORTS = { first: 15000, last: 15099 } as const;

export function isMeshReservedPort(port: number): boolean {
  return port >= MESH_RESERVED_PORTS.first && port <= MESH_RESERVED_PORTS.last;
}

export const DEFAULT_REDIRECT: RedirectConfig = Object.freeze({
  proxyUid: 1337,
  proxyGid: 1337,
  outboundPort: 15001,
  inboundPort: 15006,
  excludeOutboundPorts: [],
  excludeInboundPorts: [],
  includeInboundPorts: '*',
  excludeOutboundIpRanges: [],
  includeOutboundIpRanges: '*',
});
