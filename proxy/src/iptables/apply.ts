// Turns validated options into a plan (reads the current nat tables, writes nothing) and runs
// it (one `iptables-restore --noflush` per address family, plus ::6 on lo for IPv6).
import { err, logger, ok, TsmeshError, type Result } from '@tsmesh/common';
import type { IptablesOptions } from './config.js';
import { IPTABLES_ERRORS } from '../errors.js';
import type { Executor } from './executor.js';
import { hasGlobalIpv6, hasIpv6InboundSource, inboundSourceArgs, IPV6_INBOUND_SOURCE } from './ipv6.js';
import { EMPTY_NAT_TABLE, parseNatTable, type NatTable } from './nat-table.js';
import { applyInput, cleanupInput, type Family } from './ruleset.js';

const log = logger('iptables.apply');

export const TOOLS = {
  4: { save: 'iptables-save', restore: 'iptables-restore', label: 'IPv4' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore', label: 'IPv6' },
} as const;

/** One atomic restore of a family's nat table. */
export interface RestoreStep {
  readonly kind: 'restore';
  readonly family: Family;
  /** The restore command, run with `--noflush` and `input` on its standard input. */
  readonly restore: string;
  /** The exact restore input; undefined when there is nothing to do (cleanup of a clean table). */
  readonly input: string | undefined;
}

/** Adding or removing ::6/128 on lo (`ip -6 addr replace|del`). */
export interface AddressStep {
  readonly kind: 'address';
  readonly action: 'add' | 'remove';
}

export type PlanStep = RestoreStep | AddressStep;

export interface Plan {
  /** In the order they run. */
  readonly steps: readonly PlanStep[];
  /** Things the user should know (IPv6 programmed or ignored, state unreadable in a dry run). */
  readonly notes: readonly string[];
}

function failure(code: string, message: string): Result<never, TsmeshError> {
  return err(new TsmeshError(code, message));
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] || 'no output';
}

/**
 * Decides which families to program and computes each one's restore input from its current nat
 * table. Reads only: nothing is changed. In a dry run, a table that cannot be read (not root, tool
 * missing) is treated as empty and a note says so; otherwise that is an error.
 */
export async function planIptables(options: IptablesOptions, executor: Executor): Promise<Result<Plan, TsmeshError>> {
  const notes: string[] = [];
  const families: Family[] = [4];
  // Cleanup in auto mode looks at IPv6 whatever the addresses now: rules may predate them.
  const cleanupAny = options.mode === 'cleanup' && options.ipv6 === 'auto';
  if (options.ipv6 === 'on' || cleanupAny) {
    families.push(6);
  } else if (options.ipv6 === 'auto' && (await hasGlobalIpv6(executor))) {
    families.push(6);
    notes.push(`${executor.where} has a global IPv6 address: programming ip6tables too`);
  }
  const { excludeOutboundIpRanges: ex, includeOutboundIpRanges: inc } = options.redirect;
  const v6Ranges = [ex, inc].some((list) => list !== '*' && list.some((c) => c.family === 6));
  if (options.mode === 'apply' && !families.includes(6) && v6Ranges) {
    notes.push('IPv6 ranges are ignored: ip6tables is not being programmed (see --ipv6)');
  }

  const steps: PlanStep[] = [];
  for (const family of families) {
    const tool = TOOLS[family];
    const read = await executor.run(tool.save, ['-t', 'nat']);
    let table: NatTable;
    if (read.code === 0) {
      table = parseNatTable(read.stdout);
    } else if (family === 6 && cleanupAny) {
      // Nothing can have been added to an ip6tables nat table that does not exist or cannot be read.
      if (!read.notFound) notes.push(`skipping IPv6 cleanup: ${tool.save} failed (${firstLine(read.stderr)})`);
      continue;
    } else if (options.dryRun) {
      notes.push(`could not read the ${tool.label} nat table (${firstLine(read.stderr)}): showing the input for an empty table`);
      table = EMPTY_NAT_TABLE;
    } else if (read.notFound) {
      const why =
        family === 4
          ? 'tsmesh iptables needs iptables'
          : options.ipv6 === 'on'
            ? '--ipv6 on needs ip6tables'
            : 'the pod has a global IPv6 address, so its IPv6 traffic would escape the mesh; install ip6tables or pass --ipv6 off';
      return failure(IPTABLES_ERRORS.TOOL_MISSING, `${tool.save} not found in ${executor.where}: ${why}`);
    } else {
      return failure(IPTABLES_ERRORS.READ_STATE, `${tool.save} -t nat failed (exit ${read.code}): ${firstLine(read.stderr)}`);
    }
    const input = options.mode === 'apply' ? applyInput(options.redirect, family, table) : cleanupInput(table);
    steps.push({ kind: 'restore', family, restore: tool.restore, input });
  }

  const programsV6 = steps.some((s) => s.kind === 'restore' && s.family === 6);
  if (programsV6 && options.mode === 'apply' && !(await hasIpv6InboundSource(executor))) {
    steps.unshift({ kind: 'address', action: 'add' }); // first: harmless alone, and needed by the rules
  } else if (programsV6 && options.mode === 'cleanup' && (await hasIpv6InboundSource(executor))) {
    steps.push({ kind: 'address', action: 'remove' });
  }
  return ok({ steps, notes });
}

/** Adds the offending input line to iptables-restore's "line N failed" message. */
function explainRestoreFailure(stderr: string, input: string): string {
  const message = firstLine(stderr);
  const lineNumber = /line:? (\d+)/.exec(stderr)?.[1];
  const line = lineNumber === undefined ? undefined : input.split('\n')[Number(lineNumber) - 1];
  return line === undefined ? message : `${message} (the line is: ${line})`;
}

async function runStep(step: PlanStep, executor: Executor): Promise<Result<void, TsmeshError>> {
  if (step.kind === 'address') {
    const args = inboundSourceArgs(step.action);
    const result = await executor.run('ip', args);
    if (result.code !== 0) {
      const what = result.notFound ? 'not found (iproute2 is needed for IPv6 capture)' : `failed: ${firstLine(result.stderr)}`;
      return failure(IPTABLES_ERRORS.ADDRESS, `ip ${args.join(' ')} in ${executor.where} ${what}`);
    }
    log.info({ address: IPV6_INBOUND_SOURCE }, `${step.action === 'add' ? 'added' : 'removed'} the IPv6 inbound source address on lo`);
    return ok(undefined);
  }
  if (step.input === undefined) return ok(undefined);
  const result = await executor.run(step.restore, ['--noflush'], step.input);
  if (result.code !== 0) {
    const what = result.notFound ? 'not found' : `failed (exit ${result.code}): ${explainRestoreFailure(result.stderr, step.input)}`;
    return failure(IPTABLES_ERRORS.RESTORE, `${step.restore} --noflush in ${executor.where} ${what}`);
  }
  const rules = step.input.split('\n').filter((line) => line.startsWith('-A ')).length;
  log.info({ family: step.family, rules }, `${step.restore} --noflush applied`);
  return ok(undefined);
}

/** Runs the steps in order. Stops at the first failure, which it returns as a value. */
export async function applyPlan(plan: Plan, executor: Executor): Promise<Result<void, TsmeshError>> {
  for (const step of plan.steps) {
    const result = await runStep(step, executor);
    if (!result.ok) return result;
  }
  return ok(undefined);
}

/**
 * The dry-run output: each restore input headed by a comment naming its command; other steps
 * appear as comments, so the whole text stays valid restore input.
 */
export function renderPlan(plan: Plan): string {
  return plan.steps
    .map((step) => {
      if (step.kind === 'address') {
        return `# ip ${inboundSourceArgs(step.action).join(' ')}  (the inbound proxy's IPv6 source address)\n`;
      }
      const head = `# ${step.restore} --noflush (${TOOLS[step.family].label})\n`;
      return head + (step.input ?? '# nothing to remove\n');
    })
    .join('');
}

/** Plans, then applies unless `dryRun`. The plan is returned either way (for printing). */
export async function runIptables(options: IptablesOptions, executor: Executor): Promise<Result<Plan, TsmeshError>> {
  const plan = await planIptables(options, executor);
  if (!plan.ok || options.dryRun) return plan;
  const applied = await applyPlan(plan.value, executor);
  return applied.ok ? plan : applied;
}
