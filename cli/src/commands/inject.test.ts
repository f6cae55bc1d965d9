// `tsmesh inject`: through the command object with captured output, and through the built binary
// (needs a prior `npx tsc -b`) on a real file and on standard input.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { UsageError } from '../command.js';
import { makeInjectCommand, type InjectIo } from './inject.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

const MANIFESTS = `# A Deployment, a CronJob and a ConfigMap in one file.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1.27
          livenessProbe:
            tcpSocket: { port: 8080 }
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: report:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  greeting: hello # as written
`;

type Json = Record<string, unknown>;
type Template = { metadata?: { annotations?: Record<string, string> }; spec: { initContainers?: Array<{ name: string }>; containers: Array<{ name: string; image?: string; livenessProbe?: unknown }> } };

function objects(text: string): Json[] {
  return (parseAllDocuments(text) as unknown as Array<{ toJS(): Json }>).map((document) => document.toJS());
}

function templates(text: string): { deployment: Template; cronJob: Template; configMap: Json } {
  const [deployment, cronJob, configMap] = objects(text) as [Json, Json, Json];
  return {
    deployment: (deployment as { spec: { template: Template } }).spec.template,
    cronJob: (cronJob as { spec: { jobTemplate: { spec: { template: Template } } } }).spec.jobTemplate.spec.template,
    configMap,
  };
}

function expectInjected(text: string, image = 'ghcr.io/tsmesh/tsmesh:0.1.0'): void {
  const { deployment, cronJob, configMap } = templates(text);
  for (const template of [deployment, cronJob]) {
    expect(template.spec.containers[0]?.name).toBe('tsmesh-proxy');
    expect(template.spec.containers[0]?.image).toBe(image);
    expect(template.spec.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init']);
    expect(template.metadata?.annotations?.['tsmesh.io/status']).toBeDefined();
  }
  expect(deployment.spec.containers[1]?.livenessProbe).toEqual({ httpGet: { path: '/app-health/web/livez', port: 15020, scheme: 'HTTP' } });
  expect(configMap).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-config', namespace: 'shop' }, data: { greeting: 'hello' } });
  expect(text).toContain('greeting: hello # as written');
}

describe('tsmesh inject (command)', () => {
  let dir: string;
  let out: string;
  let errors: string;
  let io: InjectIo;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-inject-'));
    out = '';
    errors = '';
    io = {
      readFile: async (path) => readFileSync(path, 'utf8'),
      readStdin: async () => MANIFESTS,
      stdout: (text) => void (out += text),
      stderr: (text) => void (errors += text),
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('injects the Deployment and the CronJob of a multi-document file and passes the ConfigMap through', async () => {
    const file = join(dir, 'app.yaml');
    writeFileSync(file, MANIFESTS);
    expect(await makeInjectCommand(io).run(['-f', file, '--native-sidecars', 'false'])).toBe(0);
    expectInjected(out);
    expect(errors).toBe('');
  });

  it('reads standard input with -f - and takes --image and --native-sidecars', async () => {
    expect(await makeInjectCommand(io).run(['-f', '-', '--image', 'registry.test/tsmesh:5', '--native-sidecars', 'true'])).toBe(0);
    const { deployment } = templates(out);
    expect(deployment.spec.initContainers?.map((c) => c.name)).toEqual(['tsmesh-init', 'tsmesh-proxy']);
    expect(deployment.spec.containers.map((c) => c.name)).toEqual(['web']);
    expect(deployment.spec.initContainers?.[1]).toMatchObject({ image: 'registry.test/tsmesh:5', restartPolicy: 'Always' });
  });

  it('turns bad flags into usage errors', async () => {
    await expect(makeInjectCommand(io).run([])).rejects.toThrow(new UsageError('-f FILE is required ("-" reads standard input)'));
    await expect(makeInjectCommand(io).run(['-f', 'x', '--native-sidecars', 'perhaps'])).rejects.toBeInstanceOf(UsageError);
  });

  it('names a file it cannot read', async () => {
    await expect(makeInjectCommand(io).run(['-f', join(dir, 'missing.yaml')])).rejects.toThrow(/^cannot read .*missing\.yaml: /);
  });

  it('fails on a malformed annotation, naming the file, the object and the annotation', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, MANIFESTS.replace('labels: { app: web }\n    spec:', 'labels: { app: web }\n      annotations: { tsmesh.io/exclude-outbound-ports: "70000" }\n    spec:'));
    await expect(makeInjectCommand(io).run(['-f', file])).rejects.toThrow(
      `${file}, document 1: Deployment shop/web: annotation tsmesh.io/exclude-outbound-ports: "70000" is not valid (port 70000 is out of range 1-65535)`,
    );
    expect(out).toBe('');
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tsmesh(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, ...args], (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

describe('tsmesh inject (built binary)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-inject-bin-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the injected stream of a multi-document file', async () => {
    const file = join(dir, 'app.yaml');
    writeFileSync(file, MANIFESTS);
    const run = await tsmesh(['inject', '-f', file, '--native-sidecars', 'false']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expectInjected(run.stdout);
  });

  it('reads standard input with -f -, and the output injects to itself', async () => {
    const first = await tsmesh(['inject', '-f', '-', '--native-sidecars', 'false'], MANIFESTS);
    expect(first.code).toBe(0);
    const second = await tsmesh(['inject', '-f', '-', '--native-sidecars', 'false'], first.stdout);
    expect(second.code).toBe(0);
    expect(objects(second.stdout)).toEqual(objects(first.stdout));
  });

  it('exits 2 with one line on a bad flag', async () => {
    const run = await tsmesh(['inject', '-f', 'x', '--native-sidecars', 'perhaps']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('tsmesh inject: --native-sidecars: "perhaps" is not valid (expected true, false or auto)\n');
  });

  it('answers --help', async () => {
    const run = await tsmesh(['inject', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^tsmesh inject: print manifests with the tsmesh sidecar injected/);
  });
});
