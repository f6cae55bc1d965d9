import { applyHeaderModifier } from './headers.js';
import type { HeaderModifier } from './types.js';

const modifier = (parts: Partial<HeaderModifier>): HeaderModifier => ({ set: [], add: [], remove: [], ...parts });

describe('applyHeaderModifier (spec: HTTPHeaderFilter)', () => {
  it('set overwrites the header (spec example: my-header: foo → bar)', () => {
    expect(applyHeaderModifier({ 'my-header': 'foo' }, modifier({ set: [{ name: 'my-header', value: 'bar' }] }))).toEqual({ 'my-header': 'bar' });
  });

  it('set adds the header when it is absent', () => {
    expect(applyHeaderModifier({}, modifier({ set: [{ name: 'x-a', value: '1' }] }))).toEqual({ 'x-a': '1' });
  });

  it('add appends to the existing value (spec example: foo + bar,baz → foo,bar,baz)', () => {
    expect(applyHeaderModifier({ 'my-header': 'foo' }, modifier({ add: [{ name: 'my-header', value: 'bar,baz' }] }))).toEqual({ 'my-header': 'foo,bar,baz' });
  });

  it('add appends one more field to a repeated header', () => {
    expect(applyHeaderModifier({ 'x-a': ['1', '2'] }, modifier({ add: [{ name: 'x-a', value: '3' }] }))).toEqual({ 'x-a': ['1', '2', '3'] });
  });

  it('remove drops the named headers (spec example: remove my-header1 and my-header3)', () => {
    const headers = { 'my-header1': 'foo', 'my-header2': 'bar', 'my-header3': 'baz' };
    expect(applyHeaderModifier(headers, modifier({ remove: ['my-header1', 'my-header3'] }))).toEqual({ 'my-header2': 'bar' });
  });

  it('compares header names case-insensitively', () => {
    const headers = { 'X-Debug': '1', 'My-Header': 'foo' };
    const result = applyHeaderModifier(headers, modifier({ remove: ['x-debug'], set: [{ name: 'my-header', value: 'bar' }] }));
    expect(result).toEqual({ 'my-header': 'bar' });
  });

  it('leaves the input untouched and copies it when there is no modifier', () => {
    const headers = { a: '1' };
    const result = applyHeaderModifier(headers, undefined);
    expect(result).toEqual({ a: '1' });
    expect(result).not.toBe(headers);
    applyHeaderModifier(headers, modifier({ set: [{ name: 'a', value: '2' }] }));
    expect(headers).toEqual({ a: '1' });
  });
});
