// Field-by-field checks of raw Kubernetes-format objects. Each check records a problem (field path
// and reason, naming the bad value) and returns undefined, so one pass reports every problem found.
import { parseGatewayDuration } from '../routing/duration.js';
import { canonicalIp, ipFamily } from './ip.js';

export interface Problem {
  /** The field, as `spec.ports[0].port`. */
  readonly path: string;
  readonly reason: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** IANA service name, as a container port name: at most 15 characters, at least one letter, no `--`. */
const IANA_SVC_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A short, quoted rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The message of a thrown value (errors from another realm, e.g. a VM context, fail `instanceof Error`). */
export function messageOf(cause: unknown): string {
  if (isRecord(cause) && typeof cause['message'] === 'string') return cause['message'];
  return String(cause);
}

export function isMissing(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class FieldChecker {
  readonly problems: Problem[] = [];
  /** Values kept as written that may not do what was meant (an unknown algorithm name): reported, never refused. */
  readonly warnings: Problem[] = [];

  /** Records a warning: the object stays valid. */
  warn(path: string, reason: string): void {
    this.warnings.push({ path, reason });
  }

  /** Records a problem, unless a parent field was already refused (a missing `spec` hides `spec.ports`). */
  fail(path: string, reason: string): undefined {
    const hidden = this.problems.some((p) => p.path !== '' && (path.startsWith(`${p.path}.`) || path.startsWith(`${p.path}[`)));
    if (!hidden) this.problems.push({ path, reason });
    return undefined;
  }

  private missing(value: unknown, path: string, required: boolean): boolean {
    if (!isMissing(value)) return false;
    if (required) this.fail(path, 'required');
    return true;
  }

  object(value: unknown, path: string, required = false): Record<string, unknown> | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (isRecord(value)) return value;
    return this.fail(path, `must be a mapping, got ${describeValue(value)}`);
  }

  array(value: unknown, path: string, required = false): readonly unknown[] | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (Array.isArray(value)) return value;
    return this.fail(path, `must be a list, got ${describeValue(value)}`);
  }

  string(value: unknown, path: string, required = false): string | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (typeof value === 'string' && value !== '') return value;
    return this.fail(path, `must be a non-empty string, got ${describeValue(value)}`);
  }

  boolean(value: unknown, path: string): boolean | undefined {
    if (this.missing(value, path, false)) return undefined;
    if (typeof value === 'boolean') return value;
    return this.fail(path, `must be true or false, got ${describeValue(value)}`);
  }

  /** A TCP/UDP port number, 1..65535. */
  port(value: unknown, path: string, required = false): number | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (isPortNumber(value)) return value;
    return this.fail(path, `must be an integer from 1 to 65535, got ${describeValue(value)}`);
  }

  /** An integer from `min` to `max` (a quoted number in YAML is a string, and refused). */
  integer(value: unknown, path: string, min: number, max: number, required = false): number | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    return this.fail(path, `must be an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }

  /** A Gateway API Duration (GEP-2257: `10s`, `500ms`, `1m30s`), in milliseconds; `positive` refuses `0s`. */
  duration(value: unknown, path: string, positive = true): number | undefined {
    if (this.missing(value, path, false)) return undefined;
    const ms = typeof value === 'string' ? parseGatewayDuration(value) : undefined;
    if (ms === undefined) {
      return this.fail(path, `must be a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "10s", "500ms", "1m30s"), got ${describeValue(value)}`);
    }
    if (positive && ms === 0) return this.fail(path, `must be longer than 0s, got ${describeValue(value)}`);
    return ms;
  }

  /** Refuses keys of `record` not in `known`: a misspelt field would otherwise be silently without effect. */
  knownFields(record: Record<string, unknown>, path: string, known: readonly string[]): void {
    for (const key of Object.keys(record)) {
      if (!known.includes(key)) this.fail(`${path}.${key}`, `is not a field of ${path} (known: ${known.join(', ')})`);
    }
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[], required = false): T | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    return this.fail(path, `must be one of ${allowed.join(', ')}, got ${describeValue(value)}`);
  }

  /** Labels, annotations, selectors: string keys to string values (a bare `true` or `8080` in YAML is not a string). */
  stringMap(value: unknown, path: string): Record<string, string> {
    const map = this.object(value, path);
    const result: Record<string, string> = {};
    if (map === undefined) return result;
    for (const [key, item] of Object.entries(map)) {
      if (typeof item === 'string') result[key] = item;
      else this.fail(`${path}[${JSON.stringify(key)}]`, `must be a string (quote it in YAML), got ${describeValue(item)}`);
    }
    return result;
  }

  /** A DNS-1123 label (namespaces, port names): lower-case alphanumerics and `-`, at most 63 characters. */
  dnsLabel(value: unknown, path: string, required = false): string | undefined {
    return this.named(value, path, required, (s) => s.length <= 63 && DNS_LABEL.test(s), 'a DNS label (lower-case letters, digits and "-", at most 63)');
  }

  /** A DNS-1035 label (Service names): a DNS label that starts with a letter. */
  dns1035Label(value: unknown, path: string, required = false): string | undefined {
    return this.named(value, path, required, (s) => s.length <= 63 && DNS_1035_LABEL.test(s), 'a DNS label starting with a letter (lower-case letters, digits and "-", at most 63)');
  }

  /** A DNS-1123 subdomain (most object names): dot-separated DNS labels, at most 253 characters. */
  dnsSubdomain(value: unknown, path: string, required = false): string | undefined {
    return this.named(value, path, required, (s) => s.length <= 253 && DNS_SUBDOMAIN.test(s), 'a DNS subdomain (lower-case letters, digits, "-" and ".", at most 253)');
  }

  /** A container port name as a Service targetPort may name it. */
  ianaServiceName(value: unknown, path: string): string | undefined {
    return this.named(value, path, true, (s) => s.length <= 15 && IANA_SVC_NAME.test(s), 'a port number or a container port name (at most 15 lower-case letters, digits and "-", with a letter)');
  }

  /** An IP address, returned canonical; with `family`, it must be of that family. */
  ip(value: unknown, path: string, family?: 'IPv4' | 'IPv6'): string | undefined {
    const text = this.string(value, path, true);
    if (text === undefined) return undefined;
    const canonical = canonicalIp(text);
    if (canonical === undefined) return this.fail(path, `must be an IP address, got ${describeValue(text)}`);
    if (family !== undefined && ipFamily(canonical) !== family) {
      return this.fail(path, `must be an ${family} address, got ${describeValue(text)}`);
    }
    return canonical;
  }

  private named(value: unknown, path: string, required: boolean, valid: (s: string) => boolean, what: string): string | undefined {
    if (this.missing(value, path, required)) return undefined;
    if (typeof value === 'string' && valid(value)) return value;
    return this.fail(path, `must be ${what}, got ${describeValue(value)}`);
  }
}

export function isPortNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}
