// The redirection ruleset as iptables-restore input: a pure function of the config, the address
// family and what the nat table already holds. The chain layout (nat table, defaults shown):
//
//   PREROUTING  -p tcp -j TSMESH_INBOUND                 incoming TCP
//   OUTPUT      -p tcp -j TSMESH_OUTBOUND                locally generated TCP
//
//   TSMESH_INBOUND            (incoming, and the proxy dialling its own pod address over lo)
//     --dport 15000:15099                 RETURN     mesh-reserved ports are never captured
//     --dport <excluded inbound port>     RETURN     with --include-inbound-ports=* (default), then
//     -j TSMESH_INBOUND_REDIRECT                       everything else is captured;
//     --dport <included port> -j TSMESH_INBOUND_REDIRECT   or only the included ports are.
//   TSMESH_INBOUND_REDIRECT   -p tcp -j REDIRECT --to-ports 15006
//
//   TSMESH_OUTBOUND
//     -s 127.0.0.6/32 -o lo               RETURN     the inbound proxy delivering to the app (it binds
//                                                    127.0.0.6) passes untouched
//     ! -d 127.0.0.1/32 -o lo uid 1337    -j TSMESH_INBOUND   the proxy dialling its own pod address
//     ! -d 127.0.0.1/32 -o lo gid 1337    -j TSMESH_INBOUND   is treated as incoming traffic, so it
//                                                    meets inbound policy (and inbound exclusions)
//     uid 1337 / gid 1337                 RETURN     the proxy's own traffic is never captured
//     -d 127.0.0.1/32                     RETURN     loopback
//     --dport 15000:15099                 RETURN     mesh-reserved ports
//     --dport <excluded outbound port>    RETURN
//     -d <excluded CIDR>                  RETURN
//     -j TSMESH_OUTBOUND_REDIRECT                    with --include-outbound-ip-ranges=* (default);
//     -d <included CIDR> -j TSMESH_OUTBOUND_REDIRECT   or only those destinations are captured.
//   TSMESH_OUTBOUND_REDIRECT  -p tcp -j REDIRECT --to-ports 15001
//
// The app's own (non-proxy) connections to its pod IP over lo are not special: they are captured
// as outbound like any other; the outbound proxy then dials the pod IP, which lands on inbound, and
// the inbound proxy delivers from 127.0.0.6, which passes: no loop, no policy bypass. For IPv6 the
// same layout uses ::1/128 and ::6/128 (added to lo by ipv6.ts), and only the config's IPv6 CIDRs.
//
// Idempotence: declaring a chain (`:TSMESH_X - [0:0]`) in a `--noflush` restore creates or flushes
// it, so own chains are rewritten whole; the jumps from built-in chains are added only when
// missing, and stray copies or stale jumps to TSMESH_ chains are deleted in the same transaction.
import { INBOUND_SOURCE_ADDRESSES } from '@tsmesh/common';
import { MESH_RESERVED_PORTS, isMeshReservedPort, type AllOr, type Cidr, type RedirectConfig } from './config.js';
import type { NatTable } from './nat-table.js';

export type Family = 4 | 6;

/** Every chain the ruleset owns starts with this prefix; cleanup removes all chains that do. */
export const CHAIN_PREFIX = 'TSMESH_';

export const CHAINS = {
  INBOUND: 'TSMESH_INBOUND',
  INBOUND_REDIRECT: 'TSMESH_INBOUND_REDIRECT',
  OUTBOUND: 'TSMESH_OUTBOUND',
  OUTBOUND_REDIRECT: 'TSMESH_OUTBOUND_REDIRECT',
} as const;

const OWN_CHAINS: readonly string[] = [CHAINS.INBOUND, CHAINS.INBOUND_REDIRECT, CHAINS.OUTBOUND, CHAINS.OUTBOUND_REDIRECT];

/** The jumps from built-in chains into the own chains, as `chain` + iptables-save spec. */
export const JUMPS: readonly { readonly chain: string; readonly spec: string }[] = [
  { chain: 'PREROUTING', spec: `-p tcp -j ${CHAINS.INBOUND}` },
  { chain: 'OUTPUT', spec: `-p tcp -j ${CHAINS.OUTBOUND}` },
];

/**
 * Per family: the loopback destination never captured, and the source address the inbound proxy
 * binds to deliver to the app (127.0.0.6 is on lo already; ::6 has to be added, see apply.ts).
 */
export const FAMILY_ADDRESSES = {
  4: { loopback: '127.0.0.1/32', inboundSource: `${INBOUND_SOURCE_ADDRESSES[4]}/32` },
  6: { loopback: '::1/128', inboundSource: `${INBOUND_SOURCE_ADDRESSES[6]}/128` },
} as const;

const RESERVED = `${MESH_RESERVED_PORTS.first}:${MESH_RESERVED_PORTS.last}`;

const isOwnChain = (chain: string): boolean => chain.startsWith(CHAIN_PREFIX);

function cidrsOf(list: AllOr<Cidr>, family: Family): AllOr<string> {
  return list === '*' ? '*' : list.filter((c) => c.family === family).map((c) => c.text);
}

function inboundRules(c: RedirectConfig): string[] {
  const chain = `-A ${CHAINS.INBOUND}`;
  const rules = [`${chain} -p tcp -m tcp --dport ${RESERVED} -j RETURN`];
  if (c.excludeInboundPorts === '*') return rules;
  const excluded = new Set(c.excludeInboundPorts);
  if (c.includeInboundPorts === '*') {
    for (const port of c.excludeInboundPorts) {
      if (!isMeshReservedPort(port)) rules.push(`${chain} -p tcp -m tcp --dport ${port} -j RETURN`);
    }
    rules.push(`${chain} -p tcp -j ${CHAINS.INBOUND_REDIRECT}`);
  } else {
    for (const port of c.includeInboundPorts) {
      if (!excluded.has(port) && !isMeshReservedPort(port)) {
        rules.push(`${chain} -p tcp -m tcp --dport ${port} -j ${CHAINS.INBOUND_REDIRECT}`);
      }
    }
  }
  return rules;
}

function outboundRules(c: RedirectConfig, family: Family): string[] {
  const chain = `-A ${CHAINS.OUTBOUND}`;
  const { loopback, inboundSource } = FAMILY_ADDRESSES[family];
  const rules = [
    `${chain} -s ${inboundSource} -o lo -j RETURN`,
    `${chain} ! -d ${loopback} -o lo -m owner --uid-owner ${c.proxyUid} -j ${CHAINS.INBOUND}`,
    `${chain} ! -d ${loopback} -o lo -m owner --gid-owner ${c.proxyGid} -j ${CHAINS.INBOUND}`,
    `${chain} -m owner --uid-owner ${c.proxyUid} -j RETURN`,
    `${chain} -m owner --gid-owner ${c.proxyGid} -j RETURN`,
    `${chain} -d ${loopback} -j RETURN`,
    `${chain} -p tcp -m tcp --dport ${RESERVED} -j RETURN`,
  ];
  const excludedCidrs = cidrsOf(c.excludeOutboundIpRanges, family);
  if (c.excludeOutboundPorts === '*' || excludedCidrs === '*') return rules;
  for (const port of c.excludeOutboundPorts) {
    if (!isMeshReservedPort(port)) rules.push(`${chain} -p tcp -m tcp --dport ${port} -j RETURN`);
  }
  for (const cidr of excludedCidrs) rules.push(`${chain} -d ${cidr} -j RETURN`);
  const included = cidrsOf(c.includeOutboundIpRanges, family);
  if (included === '*') {
    rules.push(`${chain} -p tcp -j ${CHAINS.OUTBOUND_REDIRECT}`);
  } else {
    for (const cidr of included) rules.push(`${chain} -d ${cidr} -p tcp -j ${CHAINS.OUTBOUND_REDIRECT}`);
  }
  return rules;
}

/** The `-A` lines of the own chains, in order (no table header, no jumps from built-in chains). */
export function ownChainRules(config: RedirectConfig, family: Family): string[] {
  return [
    `-A ${CHAINS.INBOUND_REDIRECT} -p tcp -j REDIRECT --to-ports ${config.inboundPort}`,
    `-A ${CHAINS.OUTBOUND_REDIRECT} -p tcp -j REDIRECT --to-ports ${config.outboundPort}`,
    ...inboundRules(config),
    ...outboundRules(config, family),
  ];
}

/** Rules outside the own chains that jump into them (the hooks this command adds). */
function hooksInto(current: NatTable) {
  return current.rules.filter((r) => !isOwnChain(r.chain) && r.target !== undefined && isOwnChain(r.target));
}

/**
 * The iptables-restore input (for `--noflush`) that installs the ruleset for one family, given
 * the family's current nat table (`EMPTY_NAT_TABLE` for a fresh namespace). Applying it any number
 * of times leaves exactly one copy of each rule: own chains are redeclared (which flushes them),
 * jumps already in place are kept, duplicate or stale jumps into TSMESH_ chains are deleted, and
 * TSMESH_ chains this version no longer uses are removed.
 */
export function applyInput(config: RedirectConfig, family: Family, current: NatTable): string {
  const lines = ['*nat', ...OWN_CHAINS.map((chain) => `:${chain} - [0:0]`)];
  const missing = new Set(JUMPS.map((j) => `${j.chain} ${j.spec}`));
  for (const hook of hooksInto(current)) {
    const key = `${hook.chain} ${hook.spec}`;
    if (missing.delete(key)) continue; // the first copy of a wanted jump stays where it is
    lines.push(`-D ${key}`);
  }
  const stale = current.chains.filter((chain) => isOwnChain(chain) && !OWN_CHAINS.includes(chain));
  lines.push(...stale.map((chain) => `-F ${chain}`), ...stale.map((chain) => `-X ${chain}`));
  lines.push(...ownChainRules(config, family));
  lines.push(...JUMPS.filter((j) => missing.has(`${j.chain} ${j.spec}`)).map((j) => `-A ${j.chain} ${j.spec}`));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * The iptables-restore input (for `--noflush`) that removes every jump into a TSMESH_ chain and
 * every TSMESH_ chain; undefined when the table holds none, so there is nothing to run.
 */
export function cleanupInput(current: NatTable): string | undefined {
  const hooks = hooksInto(current);
  const chains = current.chains.filter(isOwnChain);
  if (hooks.length === 0 && chains.length === 0) return undefined;
  return [
    '*nat',
    ...hooks.map((hook) => `-D ${hook.chain} ${hook.spec}`),
    ...chains.map((chain) => `-F ${chain}`),
    ...chains.map((chain) => `-X ${chain}`),
    'COMMIT',
    '',
  ].join('\n');
}
