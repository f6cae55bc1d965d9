// How the sidecar's Node runtime is started, wherever it runs (injected container, demo, bench):
// one list, so what is measured is what is shipped.

/**
 * V8 grows the young generation up to 64 MiB per semi-space under a steady allocation rate, which
 * costs a busy sidecar ~130 MiB of RSS for no CPU gain (the per-request objects die young either
 * way). 8 MiB semi-spaces keep the sidecar near its idle RSS under load at the same CPU per request
 * (docs/benchmarks.md, "Memory").
 */
export const SIDECAR_SEMI_SPACE_MB = 8;
export const SIDECAR_NODE_FLAGS: readonly string[] = Object.freeze([`--max-semi-space-size=${SIDECAR_SEMI_SPACE_MB}`]);

/**
 * The same young generation for the sidecar's worker threads (`--concurrency` ≥ 2), as
 * `resourceLimits.maxYoungGenerationSizeMb`: V8 sizes the young generation as three semi-spaces
 * (two for the scavenger, one for new large objects), so 8 MiB semi-spaces make 24 MiB.
 */
export const SIDECAR_YOUNG_GENERATION_MB = 3 * SIDECAR_SEMI_SPACE_MB;

/** The same flags as a NODE_OPTIONS value, for a container whose command is `tsmesh proxy`. */
export const SIDECAR_NODE_OPTIONS = SIDECAR_NODE_FLAGS.join(' ');
