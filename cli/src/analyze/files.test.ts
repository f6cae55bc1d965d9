// Reading mesh files for analyze: directories, standard input, unreadable files (a bad argument)
// and files the parser refuses (its one-line reason), and which kinds the files make complete.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MeshFileError } from '@tsmesh/common';
import { UnreadableFileError, expandPaths, inputFromFiles } from './files.js';
import { meshText, namespace, service } from './testing.js';

describe('analyze files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-analyze-files-'));
    mkdirSync(join(dir, 'mesh'));
    writeFileSync(join(dir, 'mesh', 'b.yaml'), meshText([service('shop', 'web', [80])]));
    writeFileSync(join(dir, 'mesh', 'a.json'), meshText([namespace('shop')]));
    writeFileSync(join(dir, 'mesh', 'notes.txt'), 'not a mesh file');
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 0}]}\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a directory as its .yaml, .yml and .json files in name order', () => {
    expect(expandPaths([join(dir, 'mesh'), '-'])).toEqual([join(dir, 'mesh', 'a.json'), join(dir, 'mesh', 'b.yaml'), '-']);
  });

  it('merges the files and counts Namespaces complete only when the files hold one', () => {
    const input = inputFromFiles([join(dir, 'mesh')], 'tsmesh-system');
    expect(input.objects.map((o) => o.kind)).toEqual(['Namespace', 'Service']);
    expect(input.complete.has('Namespace')).toBe(true);
    expect(input.complete.has('Pod')).toBe(false);
    expect(input.complete.has('Service')).toBe(true);
  });

  it('refuses a file that does not exist as unreadable, naming it', () => {
    expect(() => inputFromFiles([join(dir, 'absent.yaml')], 'tsmesh-system')).toThrow(UnreadableFileError);
    expect(() => inputFromFiles([join(dir, 'absent.yaml')], 'tsmesh-system')).toThrow(`cannot read ${join(dir, 'absent.yaml')}: no such file or directory`);
  });

  it("passes on the parser's refusal of a file, with the file, line, object and reason", () => {
    let error: unknown;
    try {
      inputFromFiles([join(dir, 'broken.yaml')], 'tsmesh-system');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MeshFileError);
    expect((error as Error).message).toMatch(new RegExp(`^${join(dir, 'broken.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: document 1 \\(Service default/web\\): spec\\.ports\\[0\\]\\.port`));
  });
});
