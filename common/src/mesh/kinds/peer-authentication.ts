// PeerAuthentication (security.tsmesh.io/v1): the mTLS mode of a mesh, namespace or workload, with
// per-port overrides. Precedence is applied by the policy stage, not here.
import type { FieldChecker } from '../fields.js';
import { describeValue } from '../fields.js';
import type { KindDefinition } from './kind.js';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

export interface MeshPeerAuthentication {
  readonly namespace: string;
  readonly name: string;
  /** `spec.selector.matchLabels`; undefined when there is no selector (namespace- or mesh-wide). */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** `spec.mtls.mode`; `UNSET` (inherit) when absent. */
  readonly mode: MtlsMode;
  /** `spec.portLevelMtls`, keyed by port number. */
  readonly portLevelMtls: ReadonlyMap<number, MtlsMode>;
}

export const peerAuthenticationKind: KindDefinition<MeshPeerAuthentication> = {
  apiVersion: 'security.tsmesh.io/v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec') ?? {};
    const selector = check.object(spec['selector'], 'spec.selector');
    const mtls = check.object(spec['mtls'], 'spec.mtls') ?? {};
    return Object.freeze({
      namespace: meta.namespace,
      name: meta.name,
      selector: selector === undefined ? undefined : Object.freeze(check.stringMap(selector['matchLabels'], 'spec.selector.matchLabels')),
      mode: check.oneOf(mtls['mode'], 'spec.mtls.mode', MTLS_MODES) ?? 'UNSET',
      portLevelMtls: portLevel(check, spec['portLevelMtls']),
    });
  },
};

function portLevel(check: FieldChecker, value: unknown): ReadonlyMap<number, MtlsMode> {
  const modes = new Map<number, MtlsMode>();
  const entries = check.object(value, 'spec.portLevelMtls') ?? {};
  for (const [key, item] of Object.entries(entries)) {
    const path = `spec.portLevelMtls[${JSON.stringify(key)}]`;
    const port = /^[0-9]{1,5}$/.test(key) ? Number(key) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      check.fail(path, `key must be a port number from 1 to 65535, got ${describeValue(key)}`);
    }
    const mode = check.oneOf(check.object(item, path, true)?.['mode'], `${path}.mode`, MTLS_MODES, true);
    if (mode !== undefined && port >= 1 && port <= 65535) modes.set(port, mode);
  }
  return modes;
}
