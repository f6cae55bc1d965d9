// How the sidecar's Node runtime is started, wherever it runs (injected container, demo, bench):
// one list, so what is measured is what is shipped.

/**
 * V8 grows the young generation up to 64 MiB per semi-space under a steady allocation rate, which
 * costs a busy sidecar ~130 MiB of RSS for no CPU gain (the per-request objects die young either
 * way). Since the HTTP/2 relay stopped promoting its closed streams (proxy/src/h2/stream-table.ts),
 * what survives a scavenge is the requests in flight, so 4 MiB semi-spaces cost about one more
 * scavenge of the same size per 30 ms and save 8 MiB of RSS under load (docs/benchmarks.md, "Memory").
 */
export const SIDECAR_SEMI_SPACE_MB = 4;
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
 * (two for the scavenger, one for new large objects), so 4 MiB semi-spaces make 12 MiB.
 */
export const SIDECAR_YOUNG_GENERATION_MB = 3 * SIDECAR_SEMI_SPACE_MB;

/** The same flags as a NODE_OPTIONS value, for a container whose command is `tsmesh proxy`. */
export const SIDECAR_NODE_OPTIONS = SIDECAR_NODE_FLAGS.join(' ');
