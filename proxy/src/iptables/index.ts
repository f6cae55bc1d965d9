// `tsmesh iptables`: the init container's traffic redirection (see ruleset.ts for the chain layout).
// Only what callers (the CLI, the local demo) need; generic names get an Iptables prefix because
// the package re-exports every module into one flat namespace.
export type { IptablesOptions, Ipv6Mode, RedirectConfig as IptablesRedirectConfig } from './config.js';
export { IPTABLES_ERRORS } from '../errors.js';
export { IPTABLES_FLAGS, iptablesHelp, parseIptablesFlags } from './flags.js';
export {
  localExecutor as localIptablesExecutor,
  netnsExecutor as netnsIptablesExecutor,
  type Executor as IptablesExecutor,
} from './executor.js';
export { runIptables, renderPlan as renderIptablesPlan, type Plan as IptablesPlan } from './apply.js';
