// The control-plane benchmark's figures: per-change timings, their p50/p99/max, memory samples, and
// the summary printed at the end (the JSON written with --out holds everything).
import type { FleetKind } from './control-fleet.js';
import type { MeshSize } from './control-mesh.js';
import type { MemorySample } from './control-process.js';
import { percentile } from './percentiles.js';

export const round = (ms: number): number => Math.round(ms * 10) / 10;

/** One change, in ms after the mesh file was replaced. */
export interface ChangeTiming {
  /** The control plane had read, checked and indexed the new file. */
  readonly loadedMs: number;
  readonly firstAppliedMs: number;
  readonly allAppliedMs: number;
  /** The fleet process's busy time over the change (its clients take turns on one event loop). */
  readonly fleetBusyMs: number;
}

export interface Summary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentiles (with 10 samples, p99 is the maximum). */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1] ?? Number.NaN) };
}

/** Changes propagated to one fleet. */
export interface PropagationRun {
  readonly label: string;
  readonly size: MeshSize;
  readonly kind: FleetKind;
  readonly clients: number;
  readonly debounceMs: number;
  /** Bytes of the snapshot line each client is sent. */
  readonly viewBytes: number;
  /** From starting the clients to every one holding its first snapshot. */
  readonly fleetStartMs: number;
  readonly changes: readonly ChangeTiming[];
  readonly loaded: Summary;
  readonly firstApplied: Summary;
  readonly allApplied: Summary;
  readonly fleetBusy: Summary;
}

export function propagationRun(fields: Omit<PropagationRun, 'loaded' | 'firstApplied' | 'allApplied' | 'fleetBusy'>): PropagationRun {
  const of = (pick: (t: ChangeTiming) => number): Summary => summarize(fields.changes.map(pick));
  return { ...fields, loaded: of((t) => t.loadedMs), firstApplied: of((t) => t.firstAppliedMs), allApplied: of((t) => t.allAppliedMs), fleetBusy: of((t) => t.fleetBusyMs) };
}

export interface LargeMeshResult {
  readonly size: MeshSize;
  readonly meshFileBytes: number;
  /** From starting the control plane to it serving (file read, parsed, indexed, first views built). */
  readonly controlStartMs: number;
  /** The control plane with a mesh of namespaces only: the program's own cost. */
  readonly emptyMesh: MemorySample;
  readonly idle: MemorySample;
  /** With the wire receivers connected (each was sent the whole mesh once). */
  readonly wireConnected: MemorySample;
  readonly afterWireChanges: MemorySample;
  readonly afterSidecarChanges: MemorySample;
  readonly runs: readonly PropagationRun[];
}

function runLines(run: PropagationRun): string[] {
  const ms = (s: Summary): string => `${s.p50} / ${s.p99} / ${s.max}`.padEnd(22);
  return [
    `  ${run.label}: ${run.size.services}×${run.size.endpoints}, ${run.clients} ${run.kind === 'wire' ? 'wire receivers' : 'sidecars'}, debounce ${run.debounceMs} ms, ${run.changes.length} changes, ${(run.viewBytes / 1024).toFixed(0)} KiB each`,
    `    file loaded ${ms(run.loaded)} first ${ms(run.firstApplied)} all ${ms(run.allApplied)} fleet busy ${ms(run.fleetBusy)}`,
  ];
}

function memoryLine(name: string, s: MemorySample): string {
  return `  ${name.padEnd(34)} RSS ${String(s.rssMiB).padStart(7)} MiB (peak so far ${s.peakRssMiB}), V8 heap ${s.heapUsedMiB} MiB used / ${s.heapTotalMiB} MiB, external ${s.externalMiB} MiB`;
}

export function formatReport(runs: readonly PropagationRun[], large: LargeMeshResult | undefined, machine: string): string {
  const lines = ['propagation of one EndpointSlice change, ms after the mesh file was replaced (p50 / p99 / max)'];
  for (const run of [...runs, ...(large?.runs ?? [])]) lines.push(...runLines(run));
  if (large) {
    const { size } = large;
    lines.push(`control plane memory, ${size.services} Services × ${size.endpoints} endpoints (file ${(large.meshFileBytes / 2 ** 20).toFixed(1)} MiB, serving after ${large.controlStartMs} ms):`);
    lines.push(memoryLine('empty mesh', large.emptyMesh));
    lines.push(memoryLine('idle', large.idle));
    lines.push(memoryLine(`${large.runs[0]?.clients ?? 0} wire receivers connected`, large.wireConnected));
    lines.push(memoryLine(`after ${large.runs[0]?.changes.length ?? 0} changes to them`, large.afterWireChanges));
    lines.push(memoryLine(`after ${large.runs[1]?.changes.length ?? 0} changes to ${large.runs[1]?.clients ?? 0} sidecars`, large.afterSidecarChanges));
  }
  lines.push(`machine: ${machine}`);
  return lines.join('\n');
}
