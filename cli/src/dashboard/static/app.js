/* global window, document, fetch, setTimeout */
// The dashboard page: polls /api/state and draws the topology (cytoscape), each workload's
// golden signals over time (uPlot) and the recent traces. Every name that comes from the mesh
// (metric labels, span names) is set as text (textContent, or canvas labels), never as markup.
import cytoscape from '/vendor/cytoscape.esm.min.mjs';
import uPlot from '/vendor/uPlot.esm.js';

const POLL_MS = 1000;

const cy = cytoscape({
  container: document.getElementById('graph'),
  elements: [],
  wheelSensitivity: 0.3,
  style: [
    { selector: 'node', style: { label: 'data(label)', 'background-color': '#2680c2', color: '#102a43', 'font-size': 12, 'text-valign': 'bottom', 'text-margin-y': 4, width: 28, height: 28 } },
    {
      selector: 'edge',
      style: {
        label: 'data(label)',
        'curve-style': 'bezier',
        'target-arrow-shape': 'triangle',
        width: 2,
        'line-color': '#829ab1',
        'target-arrow-color': '#829ab1',
        'font-size': 10,
        'text-wrap': 'wrap',
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.9,
        'text-background-padding': 2,
      },
    },
    { selector: 'edge[?failing]', style: { 'line-color': '#ba2525', 'target-arrow-color': '#ba2525' } },
  ],
});

/** What tests and curious users can inspect. */
const dashboard = { cy, updates: 0, lastState: undefined };
window.tsmeshDashboard = dashboard;

const fmtRate = (rps) => (rps >= 10 ? rps.toFixed(0) : rps.toFixed(1));
const fmtPct = (rate) => (rate === null ? '–' : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)}%`);
const fmtMs = (seconds) => (seconds === null ? '–' : seconds < 0.01 ? `${(seconds * 1000).toFixed(2)} ms` : `${(seconds * 1000).toFixed(1)} ms`);

/** A table cell holding `text` as text. */
function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function updateGraph(state) {
  const nodes = new Set();
  for (const e of state.edges) nodes.add(e.source).add(e.destination);
  for (const w of state.workloads) nodes.add(w.id);
  let changed = false;
  cy.batch(() => {
    for (const id of nodes) {
      if (cy.getElementById(id).empty()) {
        cy.add({ group: 'nodes', data: { id, label: id } });
        changed = true;
      }
    }
    const edgeIds = new Set();
    for (const e of state.edges) {
      const id = `${e.source}\u2192${e.destination}`;
      edgeIds.add(id);
      const label = `${fmtRate(e.rps)} rps · ${fmtPct(e.successRate)}\np99 ${fmtMs(e.p99)}`;
      const failing = e.successRate !== null && e.successRate < 0.99;
      const existing = cy.getElementById(id);
      if (existing.empty()) {
        cy.add({ group: 'edges', data: { id, source: e.source, target: e.destination, label, failing, rps: e.rps } });
        changed = true;
      } else existing.data({ label, failing, rps: e.rps });
    }
    cy.edges().forEach((edge) => {
      if (!edgeIds.has(edge.id())) edge.remove();
    });
  });
  if (changed) cy.layout({ name: 'breadthfirst', directed: true, padding: 30, spacingFactor: 1.2 }).run();
}

function updateEdges(state) {
  const body = document.querySelector('#edges tbody');
  const rows = state.edges.map((e) => {
    const tr = document.createElement('tr');
    tr.append(
      cell(e.source),
      cell(e.destination),
      cell(fmtRate(e.rps), 'num rps'),
      cell(fmtPct(e.successRate), e.successRate !== null && e.successRate < 0.99 ? 'num bad' : 'num'),
      cell(fmtMs(e.p50), 'num'),
      cell(fmtMs(e.p99), 'num'),
      cell(e.mtls ? 'yes' : 'no'),
      cell(e.reporter),
    );
    return tr;
  });
  body.replaceChildren(...rows);
}

const charts = new Map();

function chart(container, title, series) {
  const holder = document.createElement('div');
  container.append(holder);
  return new uPlot(
    {
      title,
      width: 300,
      height: 130,
      legend: { show: series.length > 1 },
      scales: { x: { time: true } },
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false }))],
      axes: [{ space: 60 }, { size: 50 }],
    },
    [[], ...series.map(() => [])],
    holder,
  );
}

function updateWorkloads(state) {
  const container = document.getElementById('workloads');
  for (const w of state.workloads) {
    let entry = charts.get(w.id);
    if (!entry) {
      const card = document.createElement('div');
      card.className = 'workload';
      const h = document.createElement('h3');
      h.textContent = w.id;
      const caption = document.createElement('div');
      card.append(h, caption);
      container.append(card);
      entry = {
        caption,
        rate: chart(card, 'requests/s', [['req/s', '#2680c2']]),
        success: chart(card, 'success %', [['success', '#3f9142']]),
        latency: chart(card, 'latency ms', [['p50', '#829ab1'], ['p99', '#d64545']]),
      };
      charts.set(w.id, entry);
    }
    entry.caption.textContent = `${w.direction === 'inbound' ? 'serving' : 'calling'}: ${fmtRate(w.rps)} rps, ${fmtPct(w.successRate)} success, p50 ${fmtMs(w.p50)}, p99 ${fmtMs(w.p99)}`;
    const h = state.history[w.id];
    if (!h) continue;
    const ms = (v) => (v === null ? null : v * 1000);
    entry.rate.setData([state.times, h.rps]);
    entry.success.setData([state.times, h.successRate.map((v) => (v === null ? null : v * 100))]);
    entry.latency.setData([state.times, h.p50.map(ms), h.p99.map(ms)]);
  }
}

function updateTraces(state) {
  const source = document.getElementById('traces-source');
  const t = state.traces;
  source.textContent = t.source === undefined ? 'No trace collector configured (--from-demo with traces, --spans-file or --zipkin).' : `From ${t.source}${t.error ? ` — ${t.error}` : ''}`;
  const rows = t.list.map((trace) => {
    const tr = document.createElement('tr');
    tr.append(
      cell(new Date(trace.startMs).toLocaleTimeString()),
      cell(trace.traceId.slice(0, 16)),
      cell(trace.name),
      cell(trace.services.join(', ')),
      cell(String(trace.spans), 'num'),
      cell(fmtMs(trace.durationMs / 1000), 'num'),
      cell(trace.error ? 'error' : 'ok', trace.error ? 'bad' : ''),
    );
    return tr;
  });
  document.querySelector('#traces tbody').replaceChildren(...rows);
}

function updateTargets(state) {
  const items = state.targets.map((t) => {
    const li = document.createElement('li');
    li.textContent = `${t.name} (${t.address}): ${t.up ? 'up' : `down — ${t.error ?? ''}`}`;
    if (!t.up) li.className = 'down';
    return li;
  });
  document.getElementById('targets').replaceChildren(...items);
  const up = state.targets.filter((t) => t.up).length;
  const when = state.at ? new Date(state.at).toLocaleTimeString() : 'not yet';
  document.getElementById('status').textContent = `${up}/${state.targets.length} sidecars up · updated ${when} · every ${state.intervalMs} ms`;
}

async function poll() {
  try {
    const res = await fetch('/api/state', { cache: 'no-store' });
    if (res.ok) {
      const state = await res.json();
      updateGraph(state);
      updateEdges(state);
      updateWorkloads(state);
      updateTraces(state);
      updateTargets(state);
      dashboard.lastState = state;
      dashboard.updates++;
      document.body.dataset.updates = String(dashboard.updates);
    }
  } catch (error) {
    document.getElementById('status').textContent = `cannot reach the dashboard server: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
