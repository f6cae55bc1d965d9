// Collects what compiling one route found wrong, as warnings naming the route and the field, and
// sorts each rule's problems by their effect: dropped rule, failing rule, failing backend, ignored field.
import type { RouteRef, RouteWarning } from './types.js';

/** `HTTPRoute demo/canary`. */
export function describeRoute(route: RouteRef): string {
  return `${route.kind} ${route.namespace}/${route.name}`;
}

export class RouteReport {
  readonly warnings: RouteWarning[] = [];

  constructor(readonly route: RouteRef) {}

  warn(detail: string): void {
    this.warnings.push(Object.freeze({ route: this.route, message: `${describeRoute(this.route)}: ${detail}` }));
  }
}

/** A backend whose share of requests must fail, as found in one rule. */
export interface BackendFailure {
  readonly reason: 'BackendNotFound' | 'InvalidKind';
  readonly message: string;
  /** What it does to requests, for the warning; default: its share of requests answers 500. */
  readonly effect?: string;
}

/**
 * The problems of one rule. A rule with any `drop` is not programmed (Gateway API "Dropped Rule");
 * one with a `failClosed` is programmed without backends, so every request it matches answers 500.
 */
export class RuleProblems {
  readonly drops: string[] = [];
  readonly failures: string[] = [];
  readonly backendFailures: BackendFailure[] = [];

  constructor(
    readonly report: RouteReport,
    readonly index: number,
  ) {}

  /** The rule is invalid and must not be programmed. */
  drop(detail: string): undefined {
    this.drops.push(detail);
    return undefined;
  }

  /** A filter that must not be skipped cannot be applied: requests the rule matches fail. */
  failClosed(detail: string): void {
    this.failures.push(detail);
  }

  backend(reason: BackendFailure['reason'], detail: string): void {
    this.backendFailures.push({ reason, message: `rule ${this.index} ${detail}` });
  }

  /** A RequestMirror's backend cannot take copies: none are sent; the requests themselves are unaffected. */
  mirror(reason: BackendFailure['reason'], detail: string): void {
    this.backendFailures.push({ reason, message: `rule ${this.index} ${detail}`, effect: 'no copies are sent' });
  }

  /** A field without effect here; the rule is programmed without it. */
  ignore(detail: string): void {
    this.report.warn(`rule ${this.index} ${detail} (ignored)`);
  }

  /** Reports every problem found; true when the rule can be programmed. */
  settle(): boolean {
    for (const detail of this.drops) this.report.warn(`rule ${this.index} ${detail} (rule dropped)`);
    if (this.drops.length > 0) return false;
    for (const detail of this.failures) this.report.warn(`rule ${this.index} ${detail} (the rule answers 500)`);
    for (const failure of this.backendFailures) this.report.warn(`${failure.message} (${failure.effect ?? 'its share of requests answers 500'})`);
    return true;
  }
}
