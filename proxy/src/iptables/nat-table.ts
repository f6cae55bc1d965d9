// Reads `iptables-save -t nat` output into chains and rules, so the ruleset can be reconciled
// with what is already installed (idempotence, cleanup). Pure: text in, data out.

/** One `-A CHAIN ...` line of iptables-save. */
export interface SavedRule {
  readonly chain: string;
  /** Everything after the chain name, as iptables-save printed it (e.g. `-p tcp -j TSMESH_INBOUND`). */
  readonly spec: string;
  /** The chain this rule jumps (`-j`) or goes (`-g`) to, if any. */
  readonly target: string | undefined;
}

export interface NatTable {
  /** Every chain declared in the nat table, built-in or user-defined. */
  readonly chains: readonly string[];
  readonly rules: readonly SavedRule[];
}

export const EMPTY_NAT_TABLE: NatTable = Object.freeze({ chains: [], rules: [] });

/**
 * Parses the `*nat` section of iptables-save (or ip6tables-save) output. Other tables, comments
 * and counters are ignored; an empty text (nat table not yet created) is an empty table.
 */
export function parseNatTable(saveOutput: string): NatTable {
  const chains: string[] = [];
  const rules: SavedRule[] = [];
  let inNat = false;
  for (const rawLine of saveOutput.split('\n')) {
    const line = rawLine.trim();
    if (line.startsWith('*')) {
      inNat = line === '*nat';
    } else if (!inNat || line === '' || line.startsWith('#') || line === 'COMMIT') {
      continue;
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(/\s+/)[0];
      if (name) chains.push(name);
    } else {
      // Kept verbatim (quoted comments included) so a `-D CHAIN spec` built from it matches.
      const match = /^-A\s+(\S+)\s+(.*)$/.exec(line);
      if (!match) continue;
      const chain = match[1] ?? '';
      const spec = match[2] ?? '';
      const target = /(?:^|\s)-[jg]\s+(\S+)/.exec(spec)?.[1];
      rules.push({ chain, spec, target });
    }
  }
  return { chains, rules };
}
