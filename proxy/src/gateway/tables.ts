// The gateway's route tables for the outbound router (outbound/router.ts RouteTables): one
// compilation of the Gateways per mesh snapshot, then per request the table of the listener port
// the connection came in on, for the request's host.
import { compileGateways, normalizeHost, type CompiledGateways, type GatewayCompileOptions, type MeshSnapshot, type RouteTable, type RouteWarning } from '@tsmesh/common';
import type { ClusterEntry } from '../outbound/clusters.js';
import type { RouteTables } from '../outbound/router.js';

export class GatewayTables implements RouteTables {
  private compiled: CompiledGateways | undefined;

  constructor(private readonly options: GatewayCompileOptions) {}

  update(snapshot: MeshSnapshot): readonly RouteWarning[] {
    this.compiled = compileGateways(snapshot, this.options);
    return this.compiled.warnings;
  }

  /** The last compilation; undefined before the first update. */
  current(): CompiledGateways | undefined {
    return this.compiled;
  }

  table(entry: ClusterEntry, authority: string): RouteTable | undefined {
    const port = this.compiled?.ports.find((p) => p.port === entry.port.port);
    if (port === undefined || port.protocol === 'TLS' || port.protocol === 'TCP') return undefined;
    return port.table(normalizeHost(authority));
  }
}
