// Drawing provenance graphs with Cytoscape.js: what to draw (grouping), where (a tree layout
// of our own), merging expansions into what is on screen, and exports of what is on screen.
//
// What is drawn. A process's files, connections and DNS names hang off it as one grouped
// node per kind of fact ("wrote 14 files") once there are GROUP_AT of them; a tap expands
// the group. Past a few of one kind the API itself sends only the count (a `summary` Group
// node): a tap fetches the members a page at a time (/graph/facts) and draws them. An image a process was started from, and that no process on screen wrote, is
// folded into the process (its details name it): those images are one shared File node per
// executable, and drawing them tied every csc.exe on a host to one node. Repeated siblings
// (a build starting csc.exe twelve times) collapse into one "csc.exe ×12" node with their
// subtrees, unless an alert entity is among them. Artifacts an alert names, and artifacts two
// processes share (dropped by one, run by another), are always drawn on their own.
//
// Where. A tidy tree, top-down: a process above its children, children left to right in
// time order. Children without children of their own (most files, short-lived tools) stack
// in a column under their parent, labels to the side, so a process with forty leaves is one
// column wide rather than forty. A process's tree hangs under its Host when the host is on
// screen. The layout is computed here (O(n)), not by dagre: dagre could not keep siblings in
// time order, and spent seconds on 2,000 nodes.

/* global cytoscape */

// Above this many nodes the viewport is rendered from a texture while panning and edges are
// hidden while moving.
const BIG = 600;

export const KINDS = ['Process', 'File', 'Connection', 'Domain', 'Host', 'Alert', 'Group'];
export const GROUP_AT = 3; // artifacts of one kind under one process before they are grouped
export const REPEAT_AT = 2; // same-name siblings before they collapse into one ×N node
export const READABLE_ZOOM = 0.8; // below this, 12 px labels are under 10 px on screen
export const COMFORT_ZOOM = 1.0; // never open further in than this
const CUT = 34; // characters of a command line's arguments shown on a node

// Everything a process touches that is not itself a process or a host: files, connections,
// DNS names today, and whatever kinds graph v2 adds (registry keys, loaded images).
const NOT_ARTIFACTS = new Set(['Process', 'Host', 'Alert', 'Group']);
const isArtifactKind = (kind) => !NOT_ARTIFACTS.has(kind);
const NOUNS = {
  WROTE: ['wrote', 'file', 'files'],
  CONNECTED_TO: ['connected to', 'address', 'addresses'],
  ACCEPTED: ['accepted from', 'address', 'addresses'],
  RESOLVED: ['resolved', 'name', 'names'],
  EXECUTED: ['ran', 'image', 'images'],
  // accounts, logons and Windows system changes (graph v2, part 2)
  RAN_AS: ['ran as', 'account', 'accounts'],
  IN_LOGON: ['ran in', 'logon', 'logons'],
  LOGGED_ON: ['logged on', 'session', 'sessions'],
  FAILED_LOGON: ['failed to log on to', 'host', 'hosts'],
  USED_CREDENTIALS: ['used credentials of', 'account', 'accounts'],
  ACCESSED_SHARE: ['accessed', 'share', 'shares'],
  INSTALLED_SERVICE: ['installed', 'service', 'services'],
  RUNS: ['runs', 'image', 'images'],
  CHANGED_TASK: ['changed', 'task', 'tasks'],
  RAN_SCRIPT: ['ran', 'script block', 'script blocks'],
  // k1: what a process (or a host) does to the system
  LOADED: ['loaded', 'module', 'modules'],
  LOADED_DRIVER: ['loaded driver', 'driver', 'drivers'],
  ACCESSED: ['opened', 'process', 'processes'],
  INJECTED: ['injected into', 'process', 'processes'],
  READ_RAW: ['read raw', 'volume', 'volumes'],
  WROTE_REGISTRY: ['changed', 'registry key', 'registry keys'],
  CREATED_PIPE: ['created', 'pipe', 'pipes'],
  CONNECTED_PIPE: ['opened', 'pipe', 'pipes'],
  REGISTERED_WMI: ['registered', 'WMI object', 'WMI objects'],
  BOUND_TO: ['bound to', 'consumer', 'consumers'],
  SET_CLIPBOARD: ['set the clipboard of', 'host', 'hosts'],
  TAMPERED: ['tampered with', 'image', 'images'],
};

// Okabe–Ito colours, each kind with its own shape so colour is never the only cue.
const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(display)',
      'font-family': 'system-ui, sans-serif',
      'font-size': 12,
      color: '#1b1f24',
      'text-valign': 'bottom',
      'text-halign': 'center',
      'text-margin-y': 4,
      'text-wrap': 'wrap',
      'text-max-width': 260,
      'text-justification': 'center',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.85,
      'text-background-padding': 1,
      'min-zoomed-font-size': 7,
      width: 30,
      height: 30,
      'border-width': 1.5,
      'border-color': '#1b1f24',
      'background-color': '#999999',
    },
  },
  { selector: 'node.side', style: { 'text-valign': 'center', 'text-halign': 'right', 'text-margin-x': 6, 'text-margin-y': 0, 'text-justification': 'left' } },
  { selector: 'node.process', style: { shape: 'round-rectangle', 'background-color': '#0072B2', width: 36, height: 24 } },
  { selector: 'node.placeholder', style: { 'border-style': 'dashed', 'background-opacity': 0.45 } },
  { selector: 'node.file', style: { shape: 'cut-rectangle', 'background-color': '#E69F00', width: 20, height: 26 } },
  { selector: 'node.connection', style: { shape: 'diamond', 'background-color': '#CC79A7', width: 26, height: 26 } },
  { selector: 'node.domain', style: { shape: 'hexagon', 'background-color': '#009E73', width: 28, height: 24 } },
  { selector: 'node.host', style: { shape: 'barrel', 'background-color': '#8c8c8c', width: 40, height: 28 } },
  {
    selector: 'node.group',
    style: {
      shape: 'round-rectangle', width: 40, height: 24, 'border-width': 3, 'border-style': 'double',
      'font-weight': 'bold',
    },
  },
  { selector: 'node.group.process', style: { 'background-color': '#0072B2', width: 44 } },
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
      'arrow-scale': 0.8,
      label: 'data(when)',
      'font-size': 10,
      color: '#303640',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.9,
      'text-background-padding': 1,
      'min-zoomed-font-size': 8,
    },
  },
  // Tree edges run like an org chart; edges to a side column run down its spine.
  { selector: 'edge.tree', style: { 'curve-style': 'taxi', 'taxi-direction': 'downward', 'taxi-turn': 22, 'taxi-turn-min-distance': 4, label: '' } },
  { selector: 'edge.spine', style: { 'curve-style': 'taxi', 'taxi-direction': 'downward', 'taxi-turn': '100%', 'taxi-turn-min-distance': 0, label: '' } },
  { selector: 'edge.spawned', style: { width: 2.2, 'line-color': '#1b1f24', 'target-arrow-color': '#1b1f24' } },
  { selector: 'edge.wrote', style: { 'line-style': 'dashed', 'line-color': '#B07800', 'target-arrow-color': '#B07800' } },
  { selector: 'edge.executed', style: { 'line-style': 'dashed', 'line-dash-pattern': [2, 3], 'line-color': '#0072B2', 'target-arrow-color': '#0072B2' } },
  { selector: 'edge.connected_to', style: { 'line-style': 'dotted', 'line-color': '#A0527F', 'target-arrow-color': '#A0527F' } },
  { selector: 'edge.resolved', style: { 'line-style': 'dotted', 'line-color': '#007A5A', 'target-arrow-color': '#007A5A' } },
  { selector: 'edge.on_host', style: { 'line-style': 'dotted', 'line-color': '#8c8c8c', 'target-arrow-shape': 'none', width: 1.2, label: '' } },
  { selector: '.faded', style: { opacity: 0.18 } },
  { selector: 'node.path', style: { 'border-color': '#F0E442', 'border-width': 5 } },
  { selector: 'edge.path', style: { width: 4, 'line-color': '#1b1f24', 'target-arrow-color': '#1b1f24' } },
  { selector: 'node.pick', style: { 'overlay-color': '#F0E442', 'overlay-opacity': 0.5, 'overlay-padding': 8 } },
  {
    selector: 'node:selected',
    style: { 'overlay-color': '#0072B2', 'overlay-opacity': 0.25, 'overlay-padding': 6, 'border-color': '#000000', 'border-width': 3 },
  },
];

const BIG_STYLE = [
  { selector: 'edge', style: { 'curve-style': 'straight', 'min-zoomed-font-size': 14 } },
  { selector: 'edge.tree, edge.spine', style: { 'curve-style': 'straight' } },
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
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function timeOf(data) {
  return data.time || data.first_time || data.start_time || '';
}

function edgeWhen(data) {
  const at = data.time || data.first_time;
  if (!at) return '';
  const count = Number(data.count);
  return count > 1 ? `${shortTime(at)} ×${count}` : shortTime(at);
}

// A command line without its executable: what tells two runs of one program apart.
export function argumentsOf(commandLine, image) {
  let text = String(commandLine || '').trim();
  if (!text) return '';
  const quoted = text.match(/^"[^"]*"\s*/);
  if (quoted) text = text.slice(quoted[0].length);
  else {
    const first = text.split(/\s+/, 1)[0];
    const base = (image || '').split(/[\\/]/).pop().toLowerCase();
    if (!base || first.toLowerCase().endsWith(base) || /[\\/]/.test(first) || /\.exe$/i.test(first)) {
      text = text.slice(first.length).trim();
    }
  }
  return text;
}

export function cut(text, length = CUT) {
  const value = String(text || '');
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}

// What a summary group from the API reads as: "wrote 24 files", "+100 shown" once opened.
export function summaryLabel(data) {
  const [verb, one, many] = NOUNS[data.rel] || [String(data.rel).toLowerCase().replace(/_/g, ' '), 'node', 'nodes'];
  const count = Number(data.count);
  const label = `${verb} ${count} ${count === 1 ? one : many}`;
  const shown = Number(data.loaded || 0) + Number(data.shown || 0);
  return shown ? `${label}\n(${shown} shown, click for more)` : label;
}

function displayOf(data) {
  if (data.kind === 'Group' && data.summary) return summaryLabel(data);
  const lines = [data.label];
  if (data.kind === 'Process') {
    const args = argumentsOf(data.command_line, data.image);
    if (args) lines.push(cut(args));
  }
  if (data.roles && data.roles.length) lines.push(`[${[...new Set(data.roles)].join(', ')}]`);
  return lines.join('\n');
}

// -- what to draw --------------------------------------------------------------------------
// The API's elements, made ready for drawing. Alert nodes and INVOLVES edges are not drawn
// (they would sit on top of every tree): the entities they name are highlighted instead.
// `keep`: node ids never folded away (where an exploration started). `group: false` draws
// every element as it came.
export function prepare(elements, { keepAlerts = false, group = true, keep = [] } = {}) {
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
    if (data.kind === 'Group' && data.summary) data.label = summaryLabel({ ...data, loaded: 0, shown: 0 });
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
  if (group) {
    const kept = new Set(keep);
    ({ nodes, edges } = foldImages(nodes, edges, kept));
    ({ nodes, edges } = groupArtifacts(nodes, edges, kept));
    ({ nodes, edges } = collapseRepeats(nodes, edges, kept));
  }
  return { nodes, edges };
}

function isEntity(node) {
  return node.classes.split(' ').includes('entity');
}

function linksOf(nodes, edges) {
  const byId = new Map(nodes.map((n) => [n.data.id, n]));
  const links = new Map(nodes.map((n) => [n.data.id, []]));
  for (const e of edges) {
    links.get(e.data.source)?.push({ edge: e, other: byId.get(e.data.target), out: true });
    links.get(e.data.target)?.push({ edge: e, other: byId.get(e.data.source), out: false });
  }
  return { byId, links };
}

// Images that only processes ran (nobody on screen wrote them) become a fact of each process.
function foldImages(nodes, edges, kept) {
  const { links } = linksOf(nodes, edges);
  const gone = new Set();
  const images = new Map(); // process id -> [path]
  for (const n of nodes) {
    if (n.data.kind !== 'File' || isEntity(n) || kept.has(n.data.id)) continue;
    const around = links.get(n.data.id);
    if (!around.length || !around.every((l) => l.edge.data.label === 'EXECUTED' && !l.out)) continue;
    gone.add(n.data.id);
    for (const l of around) {
      gone.add(l.edge.data.id);
      const list = images.get(l.other.data.id) || [];
      list.push(n.data.path || n.data.label);
      images.set(l.other.data.id, list);
    }
  }
  if (!gone.size) return { nodes, edges };
  const out = [];
  for (const n of nodes) {
    if (gone.has(n.data.id)) continue;
    if (images.has(n.data.id)) n.data.image_file = images.get(n.data.id).join('\n');
    out.push(n);
  }
  return { nodes: out, edges: edges.filter((e) => !gone.has(e.data.id)) };
}

function groupArtifacts(nodes, edges, kept) {
  const { links } = linksOf(nodes, edges);
  const groups = new Map(); // process id \0 rel -> [{node, edge}]
  for (const n of nodes) {
    if (!isArtifactKind(n.data.kind) || isEntity(n) || kept.has(n.data.id)) continue;
    const around = links.get(n.data.id);
    const owners = new Set(around.map((l) => l.other.data.id));
    if (owners.size !== 1 || around.length !== 1) continue;
    const only = around[0];
    if (only.other.data.kind !== 'Process' || only.out) continue;
    const key = `${only.other.data.id}\u0000${only.edge.data.label}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({ node: n, edge: only.edge });
  }
  const folded = new Set();
  const extraNodes = [];
  const extraEdges = [];
  for (const [key, members] of groups) {
    if (members.length < GROUP_AT) continue;
    const [processId, rel] = key.split('\u0000');
    const [verb, one, many] = NOUNS[rel] || [rel.toLowerCase().replace(/_/g, ' '), 'node', 'nodes'];
    const kind = members[0].node.data.kind;
    members.sort((a, b) => String(timeOf(a.edge.data)).localeCompare(String(timeOf(b.edge.data))));
    const times = members.map((m) => timeOf(m.edge.data)).filter(Boolean).sort();
    const id = `Group:${rel}:${processId}`;
    const label = `${verb} ${members.length} ${members.length === 1 ? one : many}`;
    const data = {
      id, kind: 'Group', of: kind, rel, label, count: members.length, parent_id: processId,
      first_time: times[0], last_time: times[times.length - 1],
      members: members.map((m) => m.node), memberEdges: members.map((m) => m.edge),
      member_ids: members.map((m) => m.node.data.id),
    };
    data.display = label;
    extraNodes.push({ group: 'nodes', data, classes: `group ${kind.toLowerCase()}` });
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

// Same-name sibling processes (with what hangs under them) become one ×N node.
function collapseRepeats(nodes, edges, kept) {
  const { byId, links } = linksOf(nodes, edges);
  const children = new Map();
  const hasParent = new Set();
  for (const e of edges) {
    if (e.data.label !== 'SPAWNED' || hasParent.has(e.data.target)) continue;
    hasParent.add(e.data.target);
    if (!children.has(e.data.source)) children.set(e.data.source, []);
    children.get(e.data.source).push(e.data.target);
  }
  // A process's subtree: its descendants, and what hangs only off the subtree.
  const subtree = (root) => {
    const inside = new Set([root]);
    const stack = [root];
    while (stack.length) {
      const id = stack.pop();
      for (const child of children.get(id) || []) if (!inside.has(child)) { inside.add(child); stack.push(child); }
      for (const l of links.get(id)) {
        const other = l.other.data.id;
        if (inside.has(other) || l.other.data.kind === 'Process' || l.other.data.kind === 'Host') continue;
        if (links.get(other).every((x) => inside.has(x.other.data.id) || x.other.data.id === id)) {
          inside.add(other);
          stack.push(other);
        }
      }
    }
    return inside;
  };
  const hidden = new Set();
  const extraNodes = [];
  const extraEdges = [];
  for (const [parentId, kids] of children) {
    if (hidden.has(parentId)) continue;
    const byName = new Map();
    for (const kid of kids) {
      const node = byId.get(kid);
      if (!node || node.data.kind !== 'Process') continue;
      const name = String(node.data.name || node.data.label).toLowerCase();
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name).push(kid);
    }
    for (const [name, same] of byName) {
      if (same.length < REPEAT_AT) continue;
      const trees = same.map(subtree);
      const all = new Set(trees.flatMap((t) => [...t]));
      if ([...all].some((id) => hidden.has(id) || kept.has(id) || isEntity(byId.get(id)))) continue;
      const members = [...all].map((id) => byId.get(id));
      const memberEdges = edges.filter((e) => all.has(e.data.source) || all.has(e.data.target));
      const times = same.map((id) => byId.get(id).data.start_time).filter(Boolean).sort();
      const first = byId.get(same[0]).data;
      const id = `Repeat:${parentId}:${name}`;
      const label = `${first.name || name} ×${same.length}`;
      const data = {
        id, kind: 'Group', of: 'Process', rel: 'SPAWNED', label, count: same.length, parent_id: parentId,
        name: first.name, first_time: times[0], last_time: times[times.length - 1], start_time: times[0],
        members, memberEdges, member_ids: same, hidden_count: all.size,
      };
      data.display = all.size > same.length ? `${label}\n(+${all.size - same.length} below)` : label;
      extraNodes.push({ group: 'nodes', data, classes: 'group process repeat' });
      const span = times.length ? `${shortTime(times[0])}–${shortTime(times[times.length - 1])}` : '';
      extraEdges.push({
        group: 'edges',
        data: { id: `SPAWNED:${parentId}->${id}`, source: parentId, target: id, label: 'SPAWNED', when: span, first_time: times[0] },
        classes: 'spawned',
      });
      for (const m of all) hidden.add(m);
      for (const e of memberEdges) hidden.add(e.data.id);
    }
  }
  if (!hidden.size) return { nodes, edges };
  return {
    nodes: [...nodes.filter((n) => !hidden.has(n.data.id)), ...extraNodes],
    edges: [...edges.filter((e) => !hidden.has(e.data.id)), ...extraEdges],
  };
}

// Replaces a group node by its members.
export async function openGroup(cy, groupNode, { anchor } = {}) {
  const { members, memberEdges } = groupNode.data();
  cy.batch(() => groupNode.remove());
  return merge(cy, { nodes: members, edges: memberEdges }, { anchor });
}
export const openBundle = openGroup;

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

// -- the view ------------------------------------------------------------------------------
// Owns the Cytoscape instance. Renderer options (textures while panning, edges hidden while
// moving) can only be chosen when an instance is made, so a big graph gets a new instance.
export class GraphView {
  constructor(container, handlers) {
    this.container = container;
    this.handlers = handlers;
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
      boxSelectionEnabled: false,
      selectionType: 'single',
      textureOnViewport: big,
      hideEdgesOnViewport: big,
      pixelRatio: big ? 1 : 'auto',
    });
    const { onTap, onBackgroundTap, onHover, onHoverEnd } = this.handlers;
    cy.on('tap', 'node', (evt) => onTap(evt.target));
    cy.on('tap', (evt) => {
      if (evt.target === cy && onBackgroundTap) onBackgroundTap();
    });
    if (onHover) cy.on('mouseover', 'node', (evt) => onHover(evt.target, evt.renderedPosition));
    if (onHoverEnd) {
      cy.on('mouseout', 'node', () => onHoverEnd());
      cy.on('viewport', () => onHoverEnd());
    }
    this.cy = cy;
    return cy;
  }
}

// -- the layout ----------------------------------------------------------------------------
const GAP = 28; // between sibling subtrees
const ROOT_GAP = 70; // between trees
const INDENT = 30; // a side column's leaves, right of their parent's spine
const STEP = 46; // between leaves in a side column
const CHAR = 6.8; // average width of a 12 px character
const ROW_WIDTH = 1400; // trees wrap into a new row past this

function lines(node) {
  return String(node.data('display') || '').split('\n');
}

function labelWidth(node) {
  return Math.min(260, Math.max(...lines(node).map((l) => l.length)) * CHAR);
}

function nodeWidth(node) {
  return node.data('kind') === 'Group' ? 44 : 40;
}

function rankOf(node) {
  return 40 + lines(node).length * 15 + 26;
}

function sortKey(node, edgeTime) {
  const d = node.data();
  const kindOrder = d.kind === 'Process' || (d.kind === 'Group' && d.of === 'Process') ? 1 : 0;
  return [kindOrder, String(d.start_time || edgeTime || d.first_time || ''), String(d.label || '')];
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

function isProcessLike(node) {
  const d = node.data();
  return d.kind === 'Process' || (d.kind === 'Group' && d.of === 'Process');
}

// Each node's place in a forest: a process under the process that spawned it, an artifact
// under the process that touched it first, a root process under its host when that is on
// screen. Returns children lists (sorted) and the roots.
function forest(cy) {
  const parent = new Map();
  const edgeTime = new Map();
  const treeEdge = new Map();
  const nodes = cy.nodes();
  const ancestorOf = (id, candidate) => {
    for (let at = candidate, hops = 0; at !== undefined && hops < 10_000; at = parent.get(at), hops += 1) {
      if (at === id) return true;
    }
    return false;
  };
  const adopt = (child, by, edge) => {
    if (parent.has(child) || child === by || ancestorOf(child, by)) return;
    parent.set(child, by);
    edgeTime.set(child, timeOf(edge.data()));
    treeEdge.set(child, edge.id());
  };
  const spawns = cy.edges('[label = "SPAWNED"]').sort((a, b) => String(timeOf(a.data())).localeCompare(String(timeOf(b.data()))));
  spawns.forEach((e) => adopt(e.target().id(), e.source().id(), e));
  const others = cy.edges().filter((e) => e.data('label') !== 'SPAWNED' && e.data('label') !== 'ON_HOST')
    .sort((a, b) => String(timeOf(a.data())).localeCompare(String(timeOf(b.data()))));
  // Writers before readers: a dropped file hangs under whoever wrote it.
  const order = { WROTE: 0, CONNECTED_TO: 1, ACCEPTED: 1, RESOLVED: 1, EXECUTED: 2 };
  others.sort((a, b) => (order[a.data('label')] ?? 3) - (order[b.data('label')] ?? 3));
  others.forEach((e) => {
    const s = e.source();
    const t = e.target();
    if (isProcessLike(s) && !isProcessLike(t)) adopt(t.id(), s.id(), e);
    else if (isProcessLike(t) && !isProcessLike(s)) adopt(s.id(), t.id(), e);
  });
  const hosts = new Map();
  nodes.filter((n) => n.data('kind') === 'Host').forEach((h) => hosts.set(String(h.data('name') || h.data('label')).toLowerCase(), h.id()));
  cy.edges('[label = "ON_HOST"]').forEach((e) => {
    if (!parent.has(e.source().id())) adopt(e.source().id(), e.target().id(), e);
  });
  if (hosts.size) {
    nodes.forEach((n) => {
      if (parent.has(n.id()) || !isProcessLike(n)) return;
      const host = hosts.get(String(n.data('host') || '').toLowerCase());
      if (host && !ancestorOf(n.id(), host)) parent.set(n.id(), host);
    });
  }
  const children = new Map();
  const roots = [];
  nodes.forEach((n) => {
    const p = parent.get(n.id());
    if (p === undefined) roots.push(n);
    else {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(n);
    }
  });
  for (const list of children.values()) {
    list.sort((a, b) => compareKeys(sortKey(a, edgeTime.get(a.id())), sortKey(b, edgeTime.get(b.id()))));
  }
  roots.sort((a, b) => {
    const hostFirst = (n) => (n.data('kind') === 'Host' ? 0 : 1);
    return hostFirst(a) - hostFirst(b) || compareKeys(sortKey(a), sortKey(b));
  });
  return { children, roots, treeEdge };
}

// Positions for every node (model coordinates) and which edges are tree edges.
export function treeLayout(cy) {
  const { children, roots, treeEdge } = forest(cy);
  const pos = new Map();
  const side = new Set();
  const kidsOf = (n) => children.get(n.id()) || [];
  // Returns the subtree's width; places the node at (its x, top).
  const place = (node, left, top) => {
    const kids = kidsOf(node);
    const leaves = kids.filter((k) => !kidsOf(k).length);
    const inner = kids.filter((k) => kidsOf(k).length);
    const rank = rankOf(node);
    const own = Math.max(nodeWidth(node), labelWidth(node));
    if (!kids.length) {
      pos.set(node.id(), { x: left + own / 2, y: top });
      return own;
    }
    let x = left;
    let spineX = null;
    if (leaves.length && (inner.length || leaves.length >= 2)) {
      spineX = left + nodeWidth(node) / 2;
      let widest = 0;
      leaves.forEach((leaf, i) => {
        const w = nodeWidth(leaf);
        pos.set(leaf.id(), { x: spineX + INDENT + w / 2, y: top + rank + i * STEP - 10 });
        side.add(leaf.id());
        widest = Math.max(widest, INDENT + w + 8 + labelWidth(leaf));
      });
      x = left + nodeWidth(node) / 2 + widest + GAP;
    } else {
      inner.unshift(...leaves);
    }
    const centres = [];
    for (const child of inner) {
      const w = place(child, x, top + rank);
      centres.push(pos.get(child.id()).x);
      x += w + GAP;
    }
    const used = x - GAP - left;
    let cx;
    if (spineX !== null) cx = spineX;
    else cx = (centres[0] + centres[centres.length - 1]) / 2;
    const width = Math.max(used, own);
    if (spineX === null && cx - own / 2 < left) cx = left + own / 2;
    pos.set(node.id(), { x: cx, y: top });
    return width;
  };
  // Trees side by side, wrapping into rows once a row is ROW_WIDTH wide (a hunt's answer can
  // be a hundred unrelated processes).
  let x = 0;
  let top = 0;
  let rowBottom = 0;
  for (const root of roots) {
    if (x > 0 && x > ROW_WIDTH) {
      x = 0;
      top = rowBottom + ROOT_GAP;
    }
    const before = new Set(pos.keys());
    const w = place(root, x, top);
    for (const [id, p] of pos) if (!before.has(id)) rowBottom = Math.max(rowBottom, p.y + 40);
    x += w + ROOT_GAP;
  }
  return { pos, side, treeEdge };
}

export function layoutOptions(cy) {
  const { pos } = cy.scratch('_tree') || {};
  return { name: 'preset', positions: (node) => pos.get(node.id()), fit: false, animate: false };
}

// Lays everything out again; resolves with the time it took (ms).
export function runLayout(cy) {
  const started = performance.now();
  const tree = treeLayout(cy);
  cy.batch(() => {
    cy.nodes().forEach((n) => {
      const p = tree.pos.get(n.id());
      if (p) n.position(p);
      n.toggleClass('side', tree.side.has(n.id()));
    });
    const spine = new Set();
    const treeIds = new Set(tree.treeEdge.values());
    for (const [child, edge] of tree.treeEdge) if (tree.side.has(child)) spine.add(edge);
    cy.edges().forEach((e) => {
      e.toggleClass('tree', treeIds.has(e.id()) && !spine.has(e.id()));
      e.toggleClass('spine', spine.has(e.id()));
    });
  });
  return Promise.resolve(performance.now() - started);
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
  cy.fit(undefined, 24);
  const paintMs = await nextFrame();
  return { addMs: t1 - t0, layoutMs, paintMs, totalMs: performance.now() - t0 };
}

// Adds what is not on screen yet, lays everything out again, marks the newcomers, and keeps
// `anchor` (a node id) where it was on screen so the reader does not lose their place.
export async function merge(cy, prepared, { anchor } = {}) {
  const fresh = [];
  const before = anchor && cy.getElementById(anchor).nonempty() ? cy.getElementById(anchor).renderedPosition() : null;
  cy.batch(() => {
    cy.elements('.fresh').removeClass('fresh');
    for (const el of [...prepared.nodes, ...prepared.edges]) {
      if (cy.getElementById(el.data.id).nonempty()) continue;
      if (el.group === 'edges' && (cy.getElementById(el.data.source).empty()
        || cy.getElementById(el.data.target).empty())) continue;
      if (el.group === 'nodes') fresh.push(el);
    }
    cy.add(fresh).addClass('fresh');
    const edges = [];
    for (const el of prepared.edges) {
      if (cy.getElementById(el.data.id).nonempty()) continue;
      if (cy.getElementById(el.data.source).empty() || cy.getElementById(el.data.target).empty()) continue;
      edges.push(el);
    }
    cy.add(edges);
  });
  const t0 = performance.now();
  await runLayout(cy);
  if (before) {
    const after = cy.getElementById(anchor).renderedPosition();
    cy.panBy({ x: before.x - after.x, y: before.y - after.y });
  }
  return { added: fresh.length, layoutMs: performance.now() - t0 };
}

// Frames `nodes` at a zoom people can read: as far in as COMFORT_ZOOM, never further out
// than READABLE_ZOOM. When they do not all fit at READABLE_ZOOM, the first of them is centred
// and the answer says how many are outside the view.
export function frame(cy, nodes, padding = 40) {
  if (!nodes || nodes.empty()) return { fitted: true, outside: 0 };
  cy.fit(nodes, padding);
  let level = cy.zoom();
  if (level > COMFORT_ZOOM) level = COMFORT_ZOOM;
  if (level < READABLE_ZOOM) level = READABLE_ZOOM;
  if (level !== cy.zoom()) {
    // Centred along each axis they fit in; else from their top-left-most, as many as fit.
    const box = nodes.boundingBox();
    cy.zoom(level);
    const room = { x: cy.width() - 2 * padding, y: cy.height() - 2 * padding };
    const first = nodes.min((n) => n.position('y') * 10 + n.position('x')).ele.boundingBox();
    const along = (axis, lo, size, start) => (size * level <= room[axis]
      ? padding + (room[axis] - size * level) / 2 - lo * level
      : padding - start * level);
    cy.pan({ x: along('x', box.x1, box.w, first.x1), y: along('y', box.y1, box.h, first.y1) });
  }
  const ext = cy.extent();
  const outside = nodes.filter((n) => {
    const b = n.boundingBox({ includeLabels: false });
    return b.x1 < ext.x1 || b.x2 > ext.x2 || b.y1 < ext.y1 || b.y2 > ext.y2;
  }).length;
  return { fitted: outside === 0, outside };
}

export function nextFrame() {
  const t0 = performance.now();
  return new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now() - t0)));
}

// Highlights a chain of nodes (ids in order) and the edges between consecutive ones.
export function highlightPath(cy, ids, { anyEdge = false } = {}) {
  const keep = new Set(ids);
  cy.batch(() => {
    cy.elements().removeClass('path faded');
    const nodes = cy.nodes().filter((n) => keep.has(n.id()));
    const edges = nodes.edgesWith(nodes).filter((e) => anyEdge || e.data('label') === 'SPAWNED');
    nodes.addClass('path');
    edges.addClass('path');
    cy.elements().not(nodes).not(edges).addClass('faded');
  });
}

export function clearHighlight(cy) {
  cy.elements().removeClass('path faded fresh pick');
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
    return { data, classes: el.classes().filter((c) => !['fresh', 'side', 'tree', 'spine', 'pick'].includes(c)).join(' ') };
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
  const out = ['<?xml version="1.0" encoding="UTF-8"?>',
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
      out.push(`  <key id="${domain[0]}_${xmlEscape(name)}" for="${domain}" attr.name="${xmlEscape(name)}" attr.type="${attrType(values)}"/>`);
    }
  }
  out.push('  <graph id="provgraph" edgedefault="directed">');
  const dataLines = (prefix, data) => Object.entries(data)
    .filter(([k, v]) => !skip.has(k) && v !== null && v !== undefined)
    .map(([k, v]) => `      <data key="${prefix}_${xmlEscape(k)}">${xmlEscape(asText(v))}</data>`);
  for (const n of elements.nodes) {
    out.push(`    <node id="${xmlEscape(n.data.id)}">`, ...dataLines('n', n.data), '    </node>');
  }
  for (const e of elements.edges) {
    out.push(`    <edge id="${xmlEscape(e.data.id)}" source="${xmlEscape(e.data.source)}" target="${xmlEscape(e.data.target)}">`,
      ...dataLines('e', e.data), '    </edge>');
  }
  out.push('  </graph>', '</graphml>', '');
  return out.join('\n');
}

export function toPng(cy) {
  return cy.png({ output: 'blob', full: true, scale: cy.nodes().length > BIG ? 1 : 2, bg: '#ffffff', maxWidth: 12000, maxHeight: 12000 });
}
