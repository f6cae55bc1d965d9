import { runDemo } from '../demo/demo.js';
import { UsageError, type Command } from '../command.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run a whole mesh on this machine and show how one gRPC channel spreads over replicas',
  help: `tsmesh demo: run a whole mesh on this machine

Usage: tsmesh demo [--calls N] [--replicas N] [--keep] [--loopback]

As root on Linux with iptables, each workload gets its own network namespace and the same
\`tsmesh iptables\` capture as in a cluster; otherwise it falls back to explicit loopback ports.

  --calls N      gRPC calls the client makes over its one channel (default 300)
  --replicas N   greeter replicas (default 3, at most 8)
  --keep         leave the mesh running until Ctrl-C, the client calling 10 times a second,
                 and print the state file for tsmesh dashboard --from-demo FILE
  --loopback     use loopback ports even where namespaces are available
`,
  async run(argv) {
    let calls = 300;
    let replicas = 3;
    let keep = false;
    let loopback = false;
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      const intValue = (max: number): number => {
        const v = argv[++i];
        if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`${arg}: "${v ?? ''}" must be a whole number from 1 to ${max}`);
        return Number(v);
      };
      if (arg === '--calls') calls = intValue(100_000);
      else if (arg === '--replicas') replicas = intValue(8);
      else if (arg === '--keep') keep = true;
      else if (arg === '--loopback') loopback = true;
      else throw new UsageError(`unknown flag "${arg}" (see tsmesh demo --help)`);
    }
    return runDemo({ calls, replicas, keep, loopback, out: (line) => process.stdout.write(`${line}\n`) });
  },
};
