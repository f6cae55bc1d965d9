import { makeSettings, parseKubernetesVersion, useNativeSidecars } from './settings.js';

describe('parseKubernetesVersion', () => {
  it('reads the forms API servers report', () => {
    expect(parseKubernetesVersion('v1.30.2')).toEqual({ major: 1, minor: 30 });
    expect(parseKubernetesVersion('v1.29.4-eks-036c24b')).toEqual({ major: 1, minor: 29 });
    expect(parseKubernetesVersion('1.28')).toEqual({ major: 1, minor: 28 });
    expect(parseKubernetesVersion('1.31+')).toEqual({ major: 1, minor: 31 });
    expect(parseKubernetesVersion('latest')).toBeUndefined();
  });
});

describe('useNativeSidecars', () => {
  it('follows an explicit setting whatever the version', () => {
    expect(useNativeSidecars(makeSettings({ nativeSidecars: true, kubernetesVersion: '1.20' }))).toBe(true);
    expect(useNativeSidecars(makeSettings({ nativeSidecars: false, kubernetesVersion: '1.33' }))).toBe(false);
  });

  it('turns native sidecars on from Kubernetes 1.29 in auto mode, and off when the version is unknown', () => {
    expect(useNativeSidecars(makeSettings({ kubernetesVersion: 'v1.28.9' }))).toBe(false);
    expect(useNativeSidecars(makeSettings({ kubernetesVersion: 'v1.29.0' }))).toBe(true);
    expect(useNativeSidecars(makeSettings({ kubernetesVersion: '2.0' }))).toBe(true);
    expect(useNativeSidecars(makeSettings())).toBe(false);
  });
});

describe('makeSettings', () => {
  it('derives the addresses from the control-plane namespace unless given', () => {
    expect(makeSettings({ controlPlaneNamespace: 'mesh' }).caAddress).toBe('tsmesh-ca.mesh.svc:15012');
    expect(makeSettings({ controlPlaneNamespace: 'mesh', caAddress: 'ca:1' }).caAddress).toBe('ca:1');
  });

  it('treats a key given as undefined as not given', () => {
    expect(makeSettings({ image: undefined }).image).toBe('ghcr.io/tsmesh/tsmesh:0.1.0');
  });
});
