import { parseQuantity } from './quantity.js';

describe('parseQuantity', () => {
  it('reads decimal and binary suffixes in base units', () => {
    expect(parseQuantity('100m')).toBeCloseTo(0.1);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('1.5')).toBe(1.5);
    expect(parseQuantity('128Mi')).toBe(128 * 1024 * 1024);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('1Ki')).toBe(1024);
    expect(parseQuantity('.5')).toBe(0.5);
    expect(parseQuantity('+3k')).toBe(3000);
  });

  it('reads decimal exponents', () => {
    expect(parseQuantity('2e3')).toBe(2000);
    expect(parseQuantity('5E-1')).toBe(0.5);
  });

  it('refuses text that is not a quantity', () => {
    for (const bad of ['', 'lots', '100MB', '1.2.3', '10 Mi', 'Mi', '1mi', '0x10', '1e', '-1', '-100m']) {
      expect(parseQuantity(bad)).toBeUndefined();
    }
  });
});
