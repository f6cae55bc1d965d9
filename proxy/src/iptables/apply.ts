// Turns validated options into restore inputs (plan: reads the current nat tables, writes
// nothing) and runs them (apply: one `iptables-restore --noflush` per address family).
import { err, logger, ok, TsmeshError, type Result } from '@tsmesh/common';
import type { IptablesOptions } from './config.js';
import { IPTABLES_ERRORS } from './errors.js';
import type { Executor } from './executor.js';
import { EMPTY_NAT_TABLE, parseNatTable, type NatTable } from './nat-table.js';
import { applyInput, cleanupInput, type Family } from './ruleset.js';

const log = logger('iptables.apply');

export const TOOLS = {
  4: { save: 'iptables-save', restore: 'iptables-restore', label: 'IPv4' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore', label: 'IPv6' },
} as const;

export interface PlanStep {
  readonly family: Family;
  /** The restore command, run with `--noflush` and `input` on its standard input. */
  readonly restore: string;
  /** The exact restore input; undefined when there is nothing to do (cleanup of a clean table). */
  readonly input: string | undefined;
}

export interface Plan {
  readonly steps: readonly PlanStep[];
  /** Things the user should know (a family skipped, state that could not be read in a dry run). */
  readonly notes: readonly string[];
}

/** Whether the namespace has a global-scope IPv6 address (scope field `00` of /proc/net/if_inet6). */
export async function hasGlobalIpv6(executor: Executor): Promise<boolean> {
  const table = await executor.readFile('/proc/net/if_inet6');
  if (table === undefined) return false; // IPv6 disabled in this kernel or namespace
  return table.split('\n').some((line) => line.trim().split(/\s+/)[3] === '00');
}

function failure(code: string, message: string): Result<never, TsmeshError> {
  return err(new TsmeshError(code, message));
}

/**
 * Decides which families to program and computes each one's restore input from its current nat
 * table. Reads only: nothing is changed. In a dry run, a table that cannot be read (not root, tool
 * missing) is treated as empty and a note says so; otherwise that is an error.
 */
export async function planIptables(options: IptablesOptions, executor: Executor): Promise<Result<Plan, TsmeshError>> {
  const notes: string[] = [];
  const families: Family[] = [4];
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
    steps.push({ family, restore: tool.restore, input });
  }
  return ok({ steps, notes });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] || 'no output';
}

/** Adds the offending input line to iptables-restore's "line N failed" message. */
function explainRestoreFailure(stderr: string, input: string): string {
  const message = firstLine(stderr);
  const lineNumber = /line:? (\d+)/.exec(stderr)?.[1];
  const line = lineNumber === undefined ? undefined : input.split('\n')[Number(lineNumber) - 1];
  return line === undefined ? message : `${message} (the line is: ${line})`;
}

/** Runs each step's restore, IPv4 first. Stops at the first failure, which it returns as a value. */
export async function applyPlan(plan: Plan, executor: Executor): Promise<Result<void, TsmeshError>> {
  for (const step of plan.steps) {
    if (step.input === undefined) continue;
    const result = await executor.run(step.restore, ['--noflush'], step.input);
    if (result.code !== 0) {
      const what = result.notFound ? 'not found' : `failed (exit ${result.code}): ${explainRestoreFailure(result.stderr, step.input)}`;
      return failure(IPTABLES_ERRORS.RESTORE, `${step.restore} --noflush in ${executor.where} ${what}`);
    }
    const rules = step.input.split('\n').filter((line) => line.startsWith('-A ')).length;
    log.info({ family: step.family, rules }, `${step.restore} --noflush applied`);
  }
  return ok(undefined);
}

/** The dry-run output: each step's restore input, headed by a comment naming the command. */
export function renderPlan(plan: Plan): string {
  return plan.steps
    .map((step) => {
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
