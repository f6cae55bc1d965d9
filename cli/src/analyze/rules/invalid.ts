// TSM0001: objects the mesh refuses. The control plane leaves an invalid object out (with a Warning
// Event on it), so whatever it meant to configure does not happen.
import type { Analyzer } from '../analyzer.js';
import { message } from '../messages.js';

export const invalidObjectAnalyzer: Analyzer = {
  name: 'invalid-object',
  reports: ['invalidObject'],
  analyze: (mesh) =>
    mesh.input.invalid.map((o) => message('invalidObject', o, `is invalid and left out of the mesh: ${o.reason}`)),
};
