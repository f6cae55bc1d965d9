import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmeshError } from '@tsmesh/common';
import { generateRoot, issueIntermediate, privateKeyPem } from './material.js';
import { loadSigningMaterial, STATE_FILES } from './load.js';
import { tempDir } from '../testing/fixtures.js';

const DAY = 24 * 3600 * 1000;

function thrown(run: () => unknown): TsmeshError {
  try {
    run();
  } catch (error) {
    if (error instanceof TsmeshError) return error;
    throw error;
  }
  throw new Error('expected a TsmeshError');
}

describe('loadSigningMaterial with a state directory', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('creates the directory, a root and an intermediate on first start', () => {
    const stateDir = join(dir, 'state');
    const material = loadSigningMaterial({ stateDir }, new Date());
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    for (const name of Object.values(STATE_FILES)) expect(statSync(join(stateDir, name)).isFile()).toBe(true);
    expect(material.roots).toHaveLength(1);
    expect(material.chain).toHaveLength(1);
    expect(material.signer.cert.checkIssued(material.roots[0]!.cert)).toBe(true);
  });

  it('keeps private keys readable by the owner only', () => {
    loadSigningMaterial({ stateDir: dir }, new Date());
    expect(statSync(join(dir, STATE_FILES.rootKey)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, STATE_FILES.intermediateKey)).mode & 0o777).toBe(0o600);
  });

  it('writes the trust bundle to root-cert.pem', () => {
    const material = loadSigningMaterial({ stateDir: dir }, new Date());
    expect(readFileSync(join(dir, 'root-cert.pem'), 'utf8')).toBe(material.roots[0]!.pem);
  });

  it('reuses the same root and intermediate on the second start', () => {
    const first = loadSigningMaterial({ stateDir: dir }, new Date());
    const second = loadSigningMaterial({ stateDir: dir }, new Date());
    expect(second.roots[0]!.cert.fingerprint256).toBe(first.roots[0]!.cert.fingerprint256);
    expect(second.signer.cert.fingerprint256).toBe(first.signer.cert.fingerprint256);
    expect(second.signer.key.export({ format: 'pem', type: 'pkcs8' })).toEqual(first.signer.key.export({ format: 'pem', type: 'pkcs8' }));
  });

  it('renews an intermediate near the end of its life under the same root', () => {
    const start = new Date();
    const first = loadSigningMaterial({ stateDir: dir }, start);
    const later = loadSigningMaterial({ stateDir: dir }, new Date(start.getTime() + 300 * DAY));
    expect(later.roots[0]!.cert.fingerprint256).toBe(first.roots[0]!.cert.fingerprint256);
    expect(later.signer.cert.fingerprint256).not.toBe(first.signer.cert.fingerprint256);
    expect(later.signer.cert.verify(first.roots[0]!.cert.publicKey)).toBe(true);
  });

  it('refuses a directory holding a root certificate without its key', () => {
    loadSigningMaterial({ stateDir: dir }, new Date());
    unlinkSync(join(dir, STATE_FILES.rootKey));
    const error = thrown(() => loadSigningMaterial({ stateDir: dir }, new Date()));
    expect(error.code).toBe('TSMESH_ERR_CA_STATE_DIR');
    expect(error.message).toContain(STATE_FILES.rootKey);
  });

  it('refuses a stored key that does not belong to the stored certificate', () => {
    loadSigningMaterial({ stateDir: dir }, new Date());
    writeFileSync(join(dir, STATE_FILES.rootKey), privateKeyPem(generateRoot(new Date()).key));
    const error = thrown(() => loadSigningMaterial({ stateDir: dir }, new Date()));
    expect(error.code).toBe('TSMESH_ERR_CA_MATERIAL');
    expect(error.message).toMatch(/does not match/);
  });

  it('appends extra roots to the trust bundle for a rotation', () => {
    const next = generateRoot(new Date());
    const extras = join(dir, 'extra.pem');
    writeFileSync(extras, next.pem);
    const stateDir = join(dir, 'state');
    const material = loadSigningMaterial({ stateDir, extraRootsFile: extras }, new Date());
    expect(material.roots.map((r) => r.pem)).toEqual([expect.any(String), next.pem]);
    expect(readFileSync(join(stateDir, 'root-cert.pem'), 'utf8')).toBe(material.roots[0]!.pem + next.pem);
  });
});

describe('loadSigningMaterial with an operator CA', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('signs with the operator intermediate and hands out the operator root', () => {
    const root = generateRoot(new Date());
    const intermediate = issueIntermediate(root, new Date());
    const material = loadSigningMaterial(
      {
        rootCertFile: write('root.pem', root.pem),
        intermediateCertFile: write('int.pem', intermediate.pem),
        intermediateKeyFile: write('int-key.pem', privateKeyPem(intermediate.key)),
      },
      new Date(),
    );
    expect(material.signer.cert.fingerprint256).toBe(intermediate.cert.fingerprint256);
    expect(material.roots[0]!.cert.fingerprint256).toBe(root.cert.fingerprint256);
  });

  it('makes its own intermediate under an operator root and key', () => {
    const root = generateRoot(new Date());
    const material = loadSigningMaterial(
      { rootCertFile: write('root.pem', root.pem), rootKeyFile: write('root-key.pem', privateKeyPem(root.key)) },
      new Date(),
    );
    expect(material.signer.cert.verify(root.cert.publicKey)).toBe(true);
  });

  it('refuses an intermediate that the root did not sign', () => {
    const root = generateRoot(new Date());
    const stranger = issueIntermediate(generateRoot(new Date()), new Date());
    const error = thrown(() =>
      loadSigningMaterial(
        {
          rootCertFile: write('root.pem', root.pem),
          intermediateCertFile: write('int.pem', stranger.pem),
          intermediateKeyFile: write('int-key.pem', privateKeyPem(stranger.key)),
        },
        new Date(),
      ),
    );
    expect(error.message).toMatch(/does not lead to the root/);
  });

  it('refuses an intermediate key that does not match the certificate', () => {
    const root = generateRoot(new Date());
    const intermediate = issueIntermediate(root, new Date());
    const error = thrown(() =>
      loadSigningMaterial(
        {
          rootCertFile: write('root.pem', root.pem),
          intermediateCertFile: write('int.pem', intermediate.pem),
          intermediateKeyFile: write('int-key.pem', privateKeyPem(root.key)),
        },
        new Date(),
      ),
    );
    expect(error.message).toContain('int.pem: the private key does not match the certificate');
  });

  it('names the file that is not PEM', () => {
    const file = write('root.pem', 'not a certificate');
    const error = thrown(() => loadSigningMaterial({ rootCertFile: file, rootKeyFile: file }, new Date()));
    expect(error.message).toBe(`${file}: no PEM certificate found`);
  });
});
