// `tsmesh iptables`: validates every flag, then programs (or prints, or removes) the pod's
// traffic redirection in the current network namespace.
import { iptablesHelp, localIptablesExecutor, parseIptablesFlags, renderIptablesPlan, runIptables } from '@tsmesh/proxy';
import { UsageError, type Command } from '../command.js';

export const iptablesCommand: Command = {
  name: 'iptables',
  summary: "program the pod's traffic redirection (init container)",
  help: iptablesHelp(),
  async run(argv) {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(iptablesHelp());
      return 0;
    }
    const options = parseIptablesFlags(argv);
    if (!options.ok) throw new UsageError(options.error.message);
    const result = await runIptables(options.value, localIptablesExecutor());
    if (!result.ok) throw result.error;
    for (const note of result.value.notes) process.stderr.write(`tsmesh iptables: ${note}\n`);
    if (options.value.dryRun) process.stdout.write(renderIptablesPlan(result.value));
    return 0;
  },
};
