// Drawing provenance graphs with Cytoscape.js: style per node kind, a top-down tree layout,
// merging expansions into what is on screen, and exports of what is on screen.
//
// Layout: dagre (layered, top-down). A process tree is a DAG once files are in it (a file
// written by one process and run by another), and dagre ranks DAGs and minimises crossings;
// the built-in breadthfirst layout only ranks by distance from chosen roots. Spawn edges weigh
// more than edges to files, connections and DNS names, so the process chain stays straight
// and each artifact hangs just below the process that touched it, next to its children.
// (Same-rank placement with minLen 0 would be nicer, but the bundled dagre fails on it.)

/* global cytoscape */

const TREE_RELS = new Set(['SPAWNED']);
// Above this many nodes labels on edges stop being drawn until zoomed in, and the viewport
// is rendered from a texture while panning.
const BIG = 600;

export const KINDS = ['Process', 'File', 'Connection', 'Domain', 'Host', 'Alert'];

// Okabe–Ito colours, each with its own shape so colour is never the only cue.
const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(display)',
      'font-family': 'system-ui, sans-serif',
      'font-size': 11,
      color: '#1b1f24',
      'text-valign': 'bottom',
      'text-halign': 'center',
      'text-margin-y': 4,
      'text-wrap': 'wrap',
      'text-max-width': 150,
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.8,
      'text-background-padding': 1,
      'min-zoomed-font-size': 6,
      width: 30,
      height: 30,
      'border-width': 1.5,
      'border-color': '#1b1f24',
      'background-color': '#999999',
    },
  },
  { selector: 'node.process', style: { shape: 'round-rectangle', 'background-color': '#0072B2', width: 38, height: 26 } },
  { selector: 'node.placeholder', style: { 'border-style': 'dashed', 'background-opacity': 0.45 } },
  { selector: 'node.file', style: { shape: 'cut-rectangle', 'background-color': '#E69F00', width: 22, height: 28 } },
  { selector: 'node.connection', style: { shape: 'diamond', 'background-color': '#CC79A7', width: 28, height: 28 } },
  { selector: 'node.domain', style: { shape: 'hexagon', 'background-color': '#009E73', width: 30, height: 26 } },
  { selector: 'node.host', style: { shape: 'barrel', 'background-color': '#8c8c8c', width: 40, height: 28 } },
  { selector: 'node.bundle', style: { shape: 'round-rectangle', width: 44, height: 30, 'border-width': 2, 'border-style': 'double', 'font-weight': 'bold' } },
  { selector: 'node.alert', style: { shape: 'star', 'background-color': '#D55E00' } },
  {
    selector: 'node.entity',
    style: {
      'border-width': 5,
      'border-style': 'double',
      'border-color': '#D55E00',
      'underlay-color': '#D55E00',
      'underlay-padding': 7,
      'underlay-opacity': 0.28,
      'underlay-shape': 'ellipse',
      'font-weight': 'bold',
    },
  },
  { selector: 'node.fresh', style: { 'border-color': '#56B4E9', 'border-width': 4 } },
  {
    selector: 'edge',
    style: {
      width: 1.6,
      'curve-style': 'bezier',
      'line-color': '#5b6472',
      'target-arrow-color': '#5b6472',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.9,
      label: 'data(when)',
      'font-size': 9,
      color: '#303640',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.9,
      'text-background-padding': 1,
      'min-zoomed-font-size': 7,
    },
  },
  { selector: 'edge.spawned', style: { width: 2.2, 'line-color': '#1b1f24', 'target-arrow-color': '#1b1f24' } },
  { selector: 'edge.wrote', style: { 'line-style': 'dashed', 'line-color': '#B07800', 'target-arrow-color': '#B07800' } },
  { selector: 'edge.executed', style: { 'line-style': 'dashed', 'line-dash-pattern': [2, 3], 'line-color': '#0072B2', 'target-arrow-color': '#0072B2' } },
  { selector: 'edge.connected_to', style: { 'line-style': 'dotted', 'line-color': '#A0527F', 'target-arrow-color': '#A0527F' } },
  { selector: 'edge.resolved', style: { 'line-style': 'dotted', 'line-color': '#007A5A', 'target-arrow-color': '#007A5A' } },
  { selector: '.faded', style: { opacity: 0.18 } },
  { selector: 'node.path', style: { 'border-color': '#F0E442', 'border-width': 5 } },
  { selector: 'edge.path', style: { width: 4, 'line-color': '#1b1f24', 'target-arrow-color': '#1b1f24' } },
  {
    selector: 'node:selected',
    style: { 'overlay-color': '#0072B2', 'overlay-opacity': 0.25, 'overlay-padding': 6, 'border-color': '#000000', 'border-width': 3 },
  },
];

const BIG_STYLE = [
  { selector: 'edge', style: { 'curve-style': 'straight', 'min-zoomed-font-size': 12 } },
  { selector: 'node', style: { 'min-zoomed-font-size': 9 } },
];

export function shortTime(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().slice(11, 19);
}

export function fullTime(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:\d\dZ$/, (m) => m);
}

function edgeWhen(data) {
  const at = data.time || data.first_time;
  if (!at) return '';
  const count = Number(data.count);
  return count > 1 ? `${shortTime(at)} ×${count}` : shortTime(at);
}

// More leaf artifacts of one kind than this under one process are drawn as one bundle node
// (a build writes dozens of temp files); the bundle lists them and can be opened.
export const BUNDLE_AT = 6;
const ARTIFACT_KINDS = new Set(['File', 'Connection', 'Domain']);

// The API's elements, made ready for drawing: Alert nodes and INVOLVES edges are not drawn
// (they would sit on top of every tree); the entities they point at are highlighted instead.
export function prepare(elements, { keepAlerts = false, bundle = true } = {}) {
  const roles = new Map();
  for (const e of elements.edges || []) {
    if (e.data.label === 'INVOLVES' && !keepAlerts) {
      const list = roles.get(e.data.target) || [];
      if (e.data.role) list.push(e.data.role);
      roles.set(e.data.target, list);
    }
  }
  let nodes = [];
  for (const n of elements.nodes || []) {
    if (n.data.kind === 'Alert' && !keepAlerts) continue;
    const data = { ...n.data };
    const classes = new Set(String(n.classes || data.kind.toLowerCase()).split(/\s+/).filter(Boolean));
    if (data.placeholder) classes.add('placeholder');
    if (roles.has(data.id)) {
      classes.add('entity');
      data.roles = roles.get(data.id);
    }
    data.display = displayOf(data);
    nodes.push({ group: 'nodes', data, classes: [...classes].join(' ') });
  }
  const present = new Set(nodes.map((n) => n.data.id));
  let edges = [];
  for (const e of elements.edges || []) {
    if (!present.has(e.data.source) || !present.has(e.data.target)) continue;
    const data = { ...e.data, when: edgeWhen(e.data) };
    edges.push({ group: 'edges', data, classes: e.classes || data.label.toLowerCase() });
  }
  if (bundle) ({ nodes, edges } = bundleLeaves(nodes, edges));
  return { nodes, edges };
}

function bundleLeaves(nodes, edges) {
  const byId = new Map(nodes.map((n) => [n.data.id, n]));
  const degree = new Map();
  for (const e of edges) {
    degree.set(e.data.source, (degree.get(e.data.source) || 0) + 1);
    degree.set(e.data.target, (degree.get(e.data.target) || 0) + 1);
  }
  const groups = new Map(); // process id + kind -> [{node, edge}]
  for (const e of edges) {
    const target = byId.get(e.data.target);
    const source = byId.get(e.data.source);
    if (!target || !source || source.data.kind !== 'Process') continue;
    if (!ARTIFACT_KINDS.has(target.data.kind) || degree.get(target.data.id) !== 1) continue;
    if (target.classes.includes('entity')) continue;
    const key = `${source.data.id}\u0000${target.data.kind}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({ node: target, edge: e });
  }
  const folded = new Set();
  const extraNodes = [];
  const extraEdges = [];
  for (const [key, members] of groups) {
    if (members.length <= BUNDLE_AT) continue;
    const [processId, kind] = key.split('\u0000');
    const id = `Bundle:${kind}:${processId}`;
    const times = members.map((m) => m.edge.data.time || m.edge.data.first_time).filter(Boolean).sort();
    const noun = { File: 'files', Connection: 'connections', Domain: 'DNS names' }[kind];
    const data = {
      id, kind: 'Bundle', of: kind, label: `${members.length} ${noun}`, count: members.length,
      members: members.map((m) => m.node), memberEdges: members.map((m) => m.edge),
      member_ids: members.map((m) => m.node.data.id),
    };
    data.display = data.label;
    extraNodes.push({ group: 'nodes', data, classes: `bundle ${kind.toLowerCase()}` });
    const rel = members[0].edge.data.label;
    const span = times.length ? `${shortTime(times[0])}–${shortTime(times[times.length - 1])}` : '';
    extraEdges.push({
      group: 'edges',
      data: { id: `${rel}:${processId}->${id}`, source: processId, target: id, label: rel, when: span, first_time: times[0], last_time: times[times.length - 1] },
      classes: rel.toLowerCase(),
    });
    for (const m of members) {
      folded.add(m.node.data.id);
      folded.add(m.edge.data.id);
    }
  }
  if (!folded.size) return { nodes, edges };
  return {
    nodes: [...nodes.filter((n) => !folded.has(n.data.id)), ...extraNodes],
    edges: [...edges.filter((e) => !folded.has(e.data.id)), ...extraEdges],
  };
}

// Replaces a bundle node by its members.
export async function openBundle(cy, bundleNode) {
  const { members, memberEdges } = bundleNode.data();
  cy.batch(() => {
    bundleNode.remove();
  });
  return merge(cy, { nodes: members, edges: memberEdges });
}

function displayOf(data) {
  const roles = data.roles && data.roles.length ? `\n[${data.roles.join(', ')}]` : '';
  return `${data.label}${roles}`;
}

export function markEntities(cy, ids, rolesById = new Map()) {
  cy.batch(() => {
    for (const id of ids) {
      const n = cy.getElementById(id);
      if (n.empty()) continue;
      n.addClass('entity');
      const roles = rolesById.get(id);
      if (roles && roles.length && !(n.data('roles') || []).length) {
        n.data('roles', roles);
        n.data('display', displayOf(n.data()));
      }
    }
  });
}

// Owns the Cytoscape instance. Renderer options (textures while panning, edges hidden while
// moving) can only be chosen when an instance is made, so a big graph gets a new instance.
export class GraphView {
  constructor(container, { onTap, onBackgroundTap }) {
    this.container = container;
    this.handlers = { onTap, onBackgroundTap };
    this.big = null;
    this.cy = null;
    this.ensure(false);
    // Cytoscape caches where its container is; tell it whenever the page moves it.
    new ResizeObserver(() => this.cy && this.cy.resize()).observe(container);
  }

  ensure(big) {
    if (this.cy && this.big === big) return this.cy;
    if (this.cy) this.cy.destroy();
    this.big = big;
    const cy = cytoscape({
      container: this.container,
      elements: [],
      style: big ? [...STYLE, ...BIG_STYLE] : STYLE,
      minZoom: 0.02,
      maxZoom: 4,
      wheelSensitivity: 0.3,
      boxSelectionEnabled: false,
      selectionType: 'single',
      textureOnViewport: big,
      hideEdgesOnViewport: big,
      pixelRatio: big ? 1 : 'auto',
    });
    cy.on('tap', 'node', (evt) => this.handlers.onTap(evt.target));
    cy.on('tap', (evt) => {
      if (evt.target === cy) this.handlers.onBackgroundTap();
    });
    this.cy = cy;
    return cy;
  }
}

export function layoutOptions(cy) {
  const big = cy.nodes().length > BIG;
  return {
    name: 'dagre',
    rankDir: 'TB',
    nodeSep: big ? 12 : 28,
    rankSep: big ? 50 : 70,
    edgeSep: 8,
    nodeDimensionsIncludeLabels: !big,
    edgeWeight: (edge) => (TREE_RELS.has(edge.data('label')) ? 4 : 1),
    fit: true,
    padding: 24,
    animate: false,
  };
}

// Runs the layout; resolves once it is done (and reports how long it took).
export function runLayout(cy, eles) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const layout = (eles || cy.elements()).layout(layoutOptions(cy));
    layout.one('layoutstop', () => resolve(performance.now() - started));
    try {
      layout.run();
    } catch (error) {
      reject(new Error(`The graph could not be laid out: ${error.message}`));
    }
  });
}

// Replaces what is drawn. Returns timings in milliseconds.
export async function render(view, prepared) {
  const t0 = performance.now();
  const cy = view.ensure(prepared.nodes.length > BIG);
  cy.batch(() => {
    cy.elements().remove();
    cy.add([...prepared.nodes, ...prepared.edges]);
  });
  const t1 = performance.now();
  const layoutMs = await runLayout(cy);
  const paintMs = await nextFrame();
  return { addMs: t1 - t0, layoutMs, paintMs, totalMs: performance.now() - t0 };
}

// Adds what is not on screen yet, lays everything out again and marks the newcomers.
export async function merge(cy, prepared) {
  const fresh = [];
  cy.batch(() => {
    cy.elements('.fresh').removeClass('fresh');
    for (const el of [...prepared.nodes, ...prepared.edges]) {
      if (cy.getElementById(el.data.id).nonempty()) continue;
      if (el.group === 'edges' && (cy.getElementById(el.data.source).empty()
        || cy.getElementById(el.data.target).empty())) continue;
      fresh.push(el);
    }
    const added = cy.add(fresh);
    added.nodes().addClass('fresh');
  });
  const t0 = performance.now();
  await runLayout(cy);
  return { added: fresh.filter((e) => e.group === 'nodes').length, layoutMs: performance.now() - t0 };
}

export function nextFrame() {
  const t0 = performance.now();
  return new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now() - t0)));
}

export function highlightPath(cy, ids) {
  const keep = new Set(ids);
  cy.batch(() => {
    cy.elements().removeClass('path faded');
    const nodes = cy.nodes().filter((n) => keep.has(n.id()));
    const edges = nodes.edgesWith(nodes).filter((e) => e.data('label') === 'SPAWNED');
    nodes.addClass('path');
    edges.addClass('path');
    cy.elements().not(nodes).not(edges).addClass('faded');
  });
}

export function clearHighlight(cy) {
  cy.elements().removeClass('path faded fresh');
}

// -- exports -------------------------------------------------------------------------------
const INTERNAL = new Set(['display', 'when', 'members', 'memberEdges']);

function visible(cy) {
  const nodes = cy.nodes().filter((n) => n.visible());
  return { nodes, edges: nodes.edgesWith(nodes) };
}

export function toJson(cy) {
  const { nodes, edges } = visible(cy);
  const clean = (el) => {
    const data = {};
    for (const [k, v] of Object.entries(el.data())) if (!INTERNAL.has(k)) data[k] = v;
    return { data, classes: el.classes().filter((c) => c !== 'fresh').join(' ') };
  };
  return { elements: { nodes: nodes.map(clean), edges: edges.map(clean) } };
}

function xmlEscape(text) {
  return String(text).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' }[c]))
    // characters XML 1.0 cannot carry at all
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD');
}

function attrType(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length && present.every((v) => typeof v === 'boolean')) return 'boolean';
  if (present.length && present.every((v) => Number.isInteger(v))) return 'long';
  if (present.length && present.every((v) => typeof v === 'number')) return 'double';
  return 'string';
}

function asText(value) {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// GraphML 1.0 of what is on screen, one <key> per property (lists and maps as JSON text).
export function toGraphML(cy) {
  const { elements } = toJson(cy);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>',
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'];
  const skip = new Set(['id', 'source', 'target']);
  for (const [domain, items] of [['node', elements.nodes], ['edge', elements.edges]]) {
    const names = new Map();
    for (const item of items) {
      for (const [k, v] of Object.entries(item.data)) {
        if (skip.has(k)) continue;
        if (!names.has(k)) names.set(k, []);
        names.get(k).push(v);
      }
    }
    for (const [name, values] of [...names.entries()].sort()) {
      lines.push(`  <key id="${domain[0]}_${xmlEscape(name)}" for="${domain}" attr.name="${xmlEscape(name)}" attr.type="${attrType(values)}"/>`);
    }
  }
  lines.push('  <graph id="provgraph" edgedefault="directed">');
  const dataLines = (prefix, data) => Object.entries(data)
    .filter(([k, v]) => !skip.has(k) && v !== null && v !== undefined)
    .map(([k, v]) => `      <data key="${prefix}_${xmlEscape(k)}">${xmlEscape(asText(v))}</data>`);
  for (const n of elements.nodes) {
    lines.push(`    <node id="${xmlEscape(n.data.id)}">`, ...dataLines('n', n.data), '    </node>');
  }
  for (const e of elements.edges) {
    lines.push(`    <edge id="${xmlEscape(e.data.id)}" source="${xmlEscape(e.data.source)}" target="${xmlEscape(e.data.target)}">`,
      ...dataLines('e', e.data), '    </edge>');
  }
  lines.push('  </graph>', '</graphml>', '');
  return lines.join('\n');
}

export function toPng(cy) {
  return cy.png({ output: 'blob', full: true, scale: cy.nodes().length > BIG ? 1 : 2, bg: '#ffffff', maxWidth: 12000, maxHeight: 12000 });
}
