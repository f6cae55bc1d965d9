// How the sidecar's Node runtime is started, wherever it runs (injected container, demo, bench):
// one list, so what is measured is what is shipped.

/**
 * V8 grows the young generation up to 64 MiB per semi-space under a steady allocation rate, which
 * costs a busy sidecar ~130 MiB of RSS for no CPU gain (the per-request objects die young either
 * way). Since the HTTP/2 relay stopped promoting its closed streams (proxy/src/h2/stream-table.ts),
 * what survives a scavenge is the requests in flight, so 2 MiB semi-spaces cost only more, equally
 * small scavenges and keep the young generation at 4 MiB instead of 16 (the full bench's peak RSS
 * 103.6 -> 98.6 MiB from 8 MiB with the same CPU per request, docs/benchmarks.md, "Memory").
 */
export const SIDECAR_SEMI_SPACE_MB = 2;
/**
 * One V8 platform thread instead of four (`--v8-pool-size`, allowed in NODE_OPTIONS): each thread
 * that runs a concurrent compile or a parallel GC task keeps a glibc malloc arena of its own, 2-8
 * MiB each once the sidecar has been under load; the sidecar has one or two cores to share anyway.
 */
export const SIDECAR_V8_POOL_SIZE = 1;
export const SIDECAR_NODE_FLAGS: readonly string[] = Object.freeze([`--max-semi-space-size=${SIDECAR_SEMI_SPACE_MB}`, `--v8-pool-size=${SIDECAR_V8_POOL_SIZE}`]);

/**
 * The same young generation for the sidecar's worker threads (`--concurrency` ≥ 2), as
 * `resourceLimits.maxYoungGenerationSizeMb`: V8 sizes the young generation as three semi-spaces
 * (two for the scavenger, one for new large objects), so 2 MiB semi-spaces make 6 MiB.
 */
export const SIDECAR_YOUNG_GENERATION_MB = 3 * SIDECAR_SEMI_SPACE_MB;

/** The same flags as a NODE_OPTIONS value, for a container whose command is `tsmesh proxy`. */
export const SIDECAR_NODE_OPTIONS = SIDECAR_NODE_FLAGS.join(' ');
