// How the sidecar's Node runtime is started, wherever it runs (injected container, demo, bench):
// one list, so what is measured is what is shipped.

/**
 * V8 grows the young generation up to 64 MiB per semi-space under a steady allocation rate, which
 * costs a busy sidecar ~130 MiB of RSS for no CPU gain (the per-request objects die young either
 * way). 8 MiB semi-spaces keep the sidecar near its idle RSS under load at the same CPU per request
 * (docs/benchmarks.md, "Memory").
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=8']);

/** The same flags as a NODE_OPTIONS value, for a container whose command is `tsmesh proxy`. */
export const SIDECAR_NODE_OPTIONS = SIDECAR_NODE_FLAGS.join(' ');
