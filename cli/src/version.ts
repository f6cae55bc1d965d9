// The client's version: read from the CLI package's own package.json when asked (no git, no
// build step), which the image ships beside dist/ as a clone has it.
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  readonly component: string;
  readonly version: string;
  /** Node.js version, e.g. v24.9.0. */
  readonly node: string;
  readonly platform: string;
}

/** The version field of the package.json at `url`, or "unknown" when it cannot be read. */
export function packageVersion(url: URL): string {
  try {
    const version = (JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown }).version;
    return typeof version === 'string' && version !== '' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function clientBuildInfo(): BuildInfo {
  return {
    component: 'client',
    // dist/version.js and src/version.ts are both one level below the package root.
    version: packageVersion(new URL('../package.json', import.meta.url)),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
  };
}
