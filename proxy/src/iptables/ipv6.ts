// What the IPv6 side needs beyond ip6tables: deciding whether the pod has IPv6 at all, and the
// ::6 address on lo that the inbound proxy binds to deliver to the app (127.0.0.6 needs no such
// step: all of 127.0.0.0/8 is on lo already). Without ::6 the proxy's delivery to its own pod
// address would be captured again by the own-pod-address rule instead of passing.
import type { Executor } from './executor.js';
import { FAMILY_ADDRESSES } from './ruleset.js';

/** `::6/128`: the address the inbound proxy binds for IPv6 deliveries to the app. */
export const IPV6_INBOUND_SOURCE = FAMILY_ADDRESSES[6].inboundSource;

const INBOUND_SOURCE_HEX = '00000000000000000000000000000006';
const SCOPE_GLOBAL = '00';

interface IfInet6Entry {
  readonly hex: string;
  readonly scope: string;
  readonly device: string;
}

/** The namespace's IPv6 addresses from /proc/net/if_inet6; empty when IPv6 is disabled. */
async function addresses(executor: Executor): Promise<IfInet6Entry[]> {
  const table = (await executor.readFile('/proc/net/if_inet6')) ?? '';
  return table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 6)
    .map(([hex = '', , , scope = '', , device = '']) => ({ hex, scope, device }));
}

/**
 * Whether the pod has IPv6 connectivity: a global-scope address on an interface other than lo
 * (lo's own global addresses, such as ::6 from an earlier run, do not count).
 */
export async function hasGlobalIpv6(executor: Executor): Promise<boolean> {
  return (await addresses(executor)).some((a) => a.scope === SCOPE_GLOBAL && a.device !== 'lo');
}

/** Whether ::6 is already on lo. */
export async function hasIpv6InboundSource(executor: Executor): Promise<boolean> {
  return (await addresses(executor)).some((a) => a.hex === INBOUND_SOURCE_HEX && a.device === 'lo');
}

/** The `ip` arguments that add (idempotently) or remove ::6/128 on lo. */
export function inboundSourceArgs(action: 'add' | 'remove'): string[] {
  return ['-6', 'addr', action === 'add' ? 'replace' : 'del', IPV6_INBOUND_SOURCE, 'dev', 'lo'];
}
