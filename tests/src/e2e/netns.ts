// Shared by the end-to-end suites: whether real namespaces can be used here. In CI (root) they
// must be: a missing tool fails the run instead of silently skipping the data-plane proof.
import { canUseNetns } from 'tsmesh/demo';

export async function requireNetns(): Promise<boolean> {
  const check = await canUseNetns();
  if (!check.ok && process.env.CI) throw new Error(`end-to-end tests need network namespaces in CI: ${check.reason}`);
  if (!check.ok) console.warn(`skipping network-namespace tests: ${check.reason}`);
  return check.ok;
}
