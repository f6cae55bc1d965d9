// The typed, validated settings of `tsmesh iptables`: what to capture (RedirectConfig) and how
// to run (IptablesOptions). Built only by flags.ts; everything downstream trusts these values.
import { INBOUND_CAPTURE_PORT, OUTBOUND_CAPTURE_PORT, PROXY_GID, PROXY_UID } from '@tsmesh/common';

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

export { isMeshReservedPort, MESH_RESERVED_PORTS } from '@tsmesh/common';

export const DEFAULT_REDIRECT: RedirectConfig = Object.freeze({
  proxyUid: PROXY_UID,
  proxyGid: PROXY_GID,
  outboundPort: OUTBOUND_CAPTURE_PORT,
  inboundPort: INBOUND_CAPTURE_PORT,
  excludeOutboundPorts: [],
  excludeInboundPorts: [],
  includeInboundPorts: '*',
  excludeOutboundIpRanges: [],
  includeOutboundIpRanges: '*',
});
