// The analyst console: sign-in, alert queue, triage, graph exploration, search, exports.
// Every data call goes to /api/v1 with the key from sessionStorage; nothing else is fetched.

import {
  GraphView, prepare, render, merge, openGroup, markEntities, runLayout, highlightPath, clearHighlight,
  summaryLabel,
  toJson, toGraphML, toPng, fullTime, shortTime, nextFrame, frame, READABLE_ZOOM,
} from './graph.js';

const API = '/api/v1';
const KEY_SLOT = 'provgraph.apiKey';
const PAGE = 500;
const MAX_ALERTS = 2000;
const EXPAND_RELS = ['SPAWNED', 'EXECUTED', 'WROTE', 'CONNECTED_TO', 'ACCEPTED', 'RESOLVED'];
const RESOLUTIONS = {
  true_positive: 'true positive',
  benign_true_positive: 'benign true positive',
  false_positive: 'false positive',
};

const $ = (sel) => document.querySelector(sel);

const state = {
  alerts: [],
  alert: null, // the open alert's detail
  view: null, // { kind: 'alert'|'explore', title }
  selected: null, // node id
  metrics: { renders: [] },
};

// -- small DOM helpers ----------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

function notice(text) {
  const box = $('#notice');
  box.textContent = text;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { box.textContent = ''; }, 6000);
}

// -- errors ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, title, detail, type) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
  }
}

async function problemOf(res) {
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      const body = await res.json();
      return new ApiError(res.status, body.title || res.statusText, body.detail || '', body.type);
    } catch { /* fall through to text */ }
  }
  const text = await res.text().catch(() => '');
  return new ApiError(res.status, res.statusText || 'Error', text.slice(0, 500));
}

function showError(error) {
  const box = $('#errors');
  let title = 'Something went wrong';
  let detail = String(error && error.message ? error.message : error);
  if (error instanceof ApiError) {
    title = `${error.title} (${error.status})`;
    detail = error.detail || '';
  } else if (error instanceof TypeError) {
    title = 'The API could not be reached';
  }
  const item = el('div', { class: 'error' },
    el('strong', { text: title }), detail ? el('span', { text: ` ${detail}` }) : null,
    el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss this message',
      onclick: () => item.remove() }, '×'));
  box.replaceChildren(item);
  if (error instanceof ApiError && error.status === 401) signOut('Your key was refused; sign in again.');
}

function clearErrors() {
  $('#errors').replaceChildren();
}

// Runs an action from a control: errors are shown, never thrown into the void.
function guarded(fn) {
  return async (...args) => {
    try {
      clearErrors();
      await fn(...args);
    } catch (error) {
      console.warn(error);
      showError(error);
    }
  };
}

// -- the API --------------------------------------------------------------------------------
let pending = 0;
function busy(delta, label) {
  pending = Math.max(0, pending + delta);
  if (label) $('#busy-text').textContent = label;
  show($('#busy'), pending > 0);
  $('#main').setAttribute('aria-busy', pending > 0 ? 'true' : 'false');
  if (pending === 0) $('#busy-text').textContent = 'Loading…';
}

async function api(path, { method = 'GET', body, accept = 'application/json', label } = {}) {
  const key = sessionStorage.getItem(KEY_SLOT);
  if (!key) throw new ApiError(401, 'Unauthorized', 'Sign in with an API key first.');
  const headers = { Authorization: `Bearer ${key}`, Accept: `${accept}, application/problem+json` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  busy(+1, label);
  try {
    const res = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
    if (!res.ok) throw await problemOf(res);
    return accept === 'application/json' ? await res.json() : await res.text();
  } finally {
    busy(-1);
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, item);
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

// -- sign-in --------------------------------------------------------------------------------
function signedIn() {
  return Boolean(sessionStorage.getItem(KEY_SLOT));
}

function showSignedIn() {
  const key = sessionStorage.getItem(KEY_SLOT) || '';
  const id = key.startsWith('pgk_') ? key.slice(4, 16) : 'key';
  $('#who-key').textContent = `signed in with ${id}…`;
  show($('#who'), true);
  show($('#signin'), false);
  show($('#main'), true);
}

function signOut(message) {
  sessionStorage.removeItem(KEY_SLOT);
  state.alerts = [];
  state.alert = null;
  state.selected = null;
  graph.cy.elements().remove();
  $('#alerts tbody').replaceChildren();
  $('#search-results').replaceChildren();
  show($('#alert-panel'), false);
  show($('#node-panel'), false);
  show($('#who'), false);
  show($('#main'), false);
  show($('#signin'), true);
  $('#signin-key').value = '';
  $('#signin-key').focus();
  if (message) notice(message);
}

async function signIn(event) {
  event.preventDefault();
  const key = $('#signin-key').value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_SLOT, key);
  try {
    await api('/alerts?limit=1', { label: 'Checking the key…' });
  } catch (error) {
    sessionStorage.removeItem(KEY_SLOT);
    if (error instanceof ApiError && error.status === 401) {
      throw new ApiError(401, 'Sign-in failed', error.detail || 'the key was refused');
    }
    throw error;
  }
  $('#signin-key').value = '';
  showSignedIn();
  await Promise.all([loadRules(), loadAlerts(), loadHunts()]);
  $('#main').focus();
}

// -- the alert queue ------------------------------------------------------------------------
const SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3, informational: 4 };
const STATUS_ORDER = { open: 0, acknowledged: 1, closed: 2 };
const SORTS = {
  severity: (a) => SEVERITY_ORDER[a.severity] ?? 9,
  status: (a) => STATUS_ORDER[a.status] ?? 9,
  assignee: (a) => (a.assignee ? a.assignee.toLowerCase() : '\uffff'),
  last_seen: (a) => String(a.last_seen || a.first_seen || ''),
  host: (a) => String(a.host || '').toLowerCase(),
  rule: (a) => String(a.rule_name || a.rule_id || '').toLowerCase(),
};
// The way each column sorts first: newest, most severe, open first, A to Z.
const FIRST_DIR = { severity: 'asc', status: 'asc', assignee: 'asc', last_seen: 'desc', host: 'asc', rule: 'asc' };
state.sort = { key: 'last_seen', dir: 'desc' };

function filters() {
  return {
    status: $('#f-status').value,
    severity: $('#f-severity').value,
    rule: $('#f-rule').value,
    host: $('#f-host').value.trim(),
  };
}

async function loadRules() {
  const select = $('#f-rule');
  try {
    const rules = await api('/rules');
    const current = select.value;
    select.replaceChildren(el('option', { value: '', text: 'any' }),
      ...rules.map((r) => el('option', { value: r.id, text: r.name || r.id })));
    select.value = current;
  } catch (error) {
    // The queue works without the rule names: fall back to the ids seen in alerts.
    console.warn('rules unavailable', error);
  }
}

async function loadAlerts() {
  const f = filters();
  const items = [];
  let cursor;
  for (;;) {
    const page = await api(`/alerts${query({ limit: PAGE, cursor, ...f })}`, { label: 'Loading alerts…' });
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!page.has_more || items.length >= MAX_ALERTS) break;
  }
  state.alerts = items;
  if ($('#f-rule').options.length <= 1) addRuleOptions(items);
  drawAlerts();
  if (state.incidents) await loadIncidents();
}

function addRuleOptions(items) {
  const seen = new Map(items.map((a) => [a.rule_id, a.rule_name || a.rule_id]));
  for (const [id, name] of seen) if (id) $('#f-rule').append(el('option', { value: id, text: name }));
}

function badge(kind, value) {
  return el('span', { class: `badge ${kind}-${value || 'none'}`, text: value || '—' });
}

// The assignee filter is applied here (the API filters by status, severity, rule and host).
function shownAlerts() {
  const wanted = $('#f-assignee').value.trim().toLowerCase();
  let items = state.alerts;
  if (wanted === 'unassigned') items = items.filter((a) => !a.assignee);
  else if (wanted) items = items.filter((a) => String(a.assignee || '').toLowerCase().includes(wanted));
  const { key, dir } = state.sort;
  const value = SORTS[key];
  const sign = dir === 'asc' ? 1 : -1;
  return [...items].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x < y) return -sign;
    if (x > y) return sign;
    return SORTS.last_seen(b).localeCompare(SORTS.last_seen(a)) || (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9);
  });
}

function sortBy(key) {
  const { key: current, dir } = state.sort;
  state.sort = current === key ? { key, dir: dir === 'asc' ? 'desc' : 'asc' } : { key, dir: FIRST_DIR[key] };
  drawAlerts();
}

function drawSortMarks() {
  const { key, dir } = state.sort;
  for (const th of document.querySelectorAll('#alerts thead th')) {
    const main = th.dataset.sort;
    const subs = [...th.querySelectorAll('button.sub')].map((b) => b.dataset.sort);
    const on = main === key || subs.includes(key);
    th.setAttribute('aria-sort', on ? (dir === 'asc' ? 'ascending' : 'descending') : 'none');
  }
  for (const b of document.querySelectorAll('#alerts thead button.sort')) {
    const own = b.dataset.sort || b.closest('th').dataset.sort;
    b.classList.toggle('on', own === key);
    b.dataset.dir = own === key ? dir : '';
  }
}

function assigneeCell(a) {
  const cell = el('td', { class: 'assignee' });
  const open = () => {
    const input = el('input', {
      type: 'text', class: 'assignee-input', value: a.assignee || '', list: 'assignees',
      'aria-label': `Assignee of ${a.rule_name || a.id} on ${a.host || 'no host'}`, spellcheck: 'false', maxlength: '200',
    });
    let done = false;
    const finish = guarded(async (save) => {
      if (done) return;
      done = true;
      const value = input.value.trim() === 'unassigned' ? '' : input.value.trim();
      if (save && value !== (a.assignee || '')) await assign(a, value);
      else drawAlerts();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') { e.preventDefault(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    cell.replaceChildren(input);
    input.focus();
    input.select();
  };
  cell.append(el('button', {
    type: 'button', class: `link assignee-btn${a.assignee ? '' : ' muted'}`, onclick: open,
    title: 'Change the assignee', 'aria-label': `Assignee: ${a.assignee || 'unassigned'}. Change`,
  }, a.assignee || 'unassigned'));
  return cell;
}

async function assign(alert, name) {
  const updated = await api(`/alerts/${encodeURIComponent(alert.id)}`, { method: 'PATCH', body: { assignee: name }, label: 'Assigning…' });
  Object.assign(alert, updated);
  if (state.alert && state.alert.id === alert.id) {
    Object.assign(state.alert, updated);
    state.alert.audit = await api(`/alerts/${encodeURIComponent(alert.id)}/audit`);
    drawAlertPanel();
  }
  drawAlerts();
  notice(name ? `Assigned to ${name}.` : 'Unassigned.');
}

function drawAssigneeOptions() {
  const names = [...new Set(state.alerts.map((a) => a.assignee).filter(Boolean))].sort();
  $('#assignees').replaceChildren(el('option', { value: 'unassigned' }), ...names.map((n) => el('option', { value: n })));
}

function drawAlerts() {
  const body = $('#alerts tbody');
  const shown = shownAlerts();
  const rows = shown.map((a) => el('tr', {
    'data-alert': a.id,
    'data-rule': a.rule_id,
    'data-host': a.host || '',
    class: state.alert && state.alert.id === a.id ? 'current' : '',
    'aria-current': state.alert && state.alert.id === a.id ? 'true' : null,
  },
  el('td', { class: 'severity' }, badge('sev', a.severity)),
  el('td', { class: 'alert' }, el('button', {
    type: 'button', class: 'link open-alert', title: a.summary || '',
    onclick: guarded(() => openAlert(a.id)),
  }, a.rule_name || a.rule_id || a.id),
  el('div', { class: 'muted small meta' }, el('span', { class: 'host', text: a.host || '—' }), ` · ${fullTime(a.last_seen || a.first_seen)}`)),
  el('td', { class: 'status' }, badge('status', a.status),
    a.resolution ? el('div', { class: 'muted small resolution', text: RESOLUTIONS[a.resolution] || a.resolution }) : null),
  assigneeCell(a)));
  body.replaceChildren(...rows);
  const total = state.alerts.length;
  $('#queue-count').textContent = shown.length === total
    ? `(${total}${total >= MAX_ALERTS ? '+' : ''})` : `(${shown.length} of ${total})`;
  show($('#alerts-empty'), shown.length === 0);
  drawSortMarks();
  drawAssigneeOptions();
}

// -- incidents: alerts that belong together ------------------------------------------------
async function toggleIncidents() {
  state.incidents = !state.incidents;
  $('#f-incidents').setAttribute('aria-pressed', state.incidents ? 'true' : 'false');
  if (state.incidents) await loadIncidents();
  else show($('#incidents'), false);
}

async function loadIncidents() {
  const f = filters();
  const res = await api(`/alerts/incidents${query({ status: f.status, severity: f.severity, host: f.host, rule: f.rule })}`, { label: 'Grouping alerts…' });
  const box = $('#incidents');
  const byId = new Map(state.alerts.map((a) => [a.id, a]));
  box.replaceChildren(el('h3', { text: `Incidents (${res.incidents.length})` }),
    ...res.incidents.map((inc) => el('div', { class: 'incident', 'data-incident': inc.id },
      el('strong', { text: `${inc.alert_ids.length} alerts · ${inc.hosts.join(', ')}` }),
      el('div', { class: 'muted small', text: `${fullTime(inc.first_seen)} → ${fullTime(inc.last_seen)} · shared ${inc.shared.join(', ')}` }),
      el('ul', {}, ...inc.alert_ids.map((id) => {
        const a = byId.get(id);
        return el('li', {}, el('button', { type: 'button', class: 'link', onclick: guarded(() => openAlert(id)) },
          a ? `${a.rule_name || a.rule_id} (${a.severity || '—'})` : id));
      })))));
  if (!res.incidents.length) box.append(el('p', { class: 'muted', text: 'No two alerts share a host, process tree or account within the window.' }));
  show(box, true);
}

// -- one alert ------------------------------------------------------------------------------
async function openAlert(id) {
  const budget = $('#g-budget').value;
  const [detail, sub] = await Promise.all([
    api(`/alerts/${encodeURIComponent(id)}`, { label: 'Loading the alert…' }),
    api(`/graph/alerts/${encodeURIComponent(id)}${query({ max_nodes: budget })}`, { label: 'Loading its graph…' }),
  ]);
  state.alert = detail;
  state.reopen = () => openAlert(id);
  drawAlertPanel();
  drawAlerts();
  guarded(loadExceptions)();
  const roles = new Map();
  for (const e of detail.entities) roles.set(e.id, [...(roles.get(e.id) || []), e.role].filter(Boolean));
  const prepared = prepare(sub.elements, { keep: [...roles.keys()] });
  await draw(prepared, {
    kind: 'alert',
    title: detail.rule_name || detail.rule_id || 'Alert',
    sub: `${detail.host || ''} · ${detail.severity || ''} · ${fullTime(detail.first_seen)} → ${fullTime(detail.last_seen)}`,
    truncated: sub.truncated,
    budget: Number(budget),
  });
  markEntities(graph.cy, roles.keys(), roles);
  await runLayout(graph.cy); // labels with roles are taller
  frameAlert();
  drawAlertAccounts();
}

// The accounts the alert's entities name, each opening its account page.
function drawAlertAccounts() {
  const names = alertAccounts();
  if (!names.length) return;
  const buttons = el('span', { class: 'alert-accounts' }, ...names.map((name) => el('button', {
    type: 'button', class: 'link', 'data-account': name, onclick: guarded(() => openAccount(name)), text: name,
  })).flatMap((b, i) => (i ? [', ', b] : [b])));
  $('#alert-facts').append(...fact('Accounts', buttons));
}

// The alert's own entities (not its host, which every process hangs under), framed at a
// zoom where their labels can be read.
function frameAlert() {
  const cy = graph.cy;
  let nodes = cy.nodes('.entity').filter((n) => n.data('kind') !== 'Host');
  if (nodes.empty()) nodes = cy.nodes('.entity');
  const result = frame(cy, nodes);
  state.framed = result;
  const note = $('#graph-frame');
  note.textContent = result.outside
    ? `${result.outside} of the alert's ${nodes.length} entities are outside the view: pan, or press Fit.`
    : '';
  show(note, Boolean(result.outside));
  return result;
}

// Frames the given nodes and their neighbours at a readable zoom: the whole graph is one
// press of "Fit" away.
function focusOn(nodes, { neighbours = true } = {}) {
  if (nodes.empty()) return;
  frame(graph.cy, neighbours ? nodes.closedNeighborhood() : nodes);
}

function fact(term, value) {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) return [];
  return [el('dt', { text: term }), el('dd', {}, value instanceof Node ? value : String(value))];
}

function drawAlertPanel() {
  const a = state.alert;
  show($('#alert-panel'), Boolean(a));
  if (!a) return;
  $('#alert-title').textContent = a.rule_name || a.rule_id || 'Alert';
  $('#alert-facts').replaceChildren(
    ...fact('Severity', badge('sev', a.severity)),
    ...fact('Status', badge('status', a.status)),
    ...fact('Resolution', a.resolution ? RESOLUTIONS[a.resolution] || a.resolution : null),
    ...fact('Host', a.host),
    ...fact('Summary', a.summary),
    ...fact('First seen', fullTime(a.first_seen)),
    ...fact('Last seen', fullTime(a.last_seen)),
    ...fact('Hits', a.hit_count),
    ...fact('Risk', a.risk_score),
    ...fact('ATT&CK', [...(a.mitre?.tactics || []), ...(a.mitre?.techniques || [])].join(', ')),
    ...fact('Assignee', a.assignee),
    ...fact('Alert id', el('code', { text: a.id })),
  );
  $('#t-status').value = a.status || 'open';
  $('#t-resolution').value = a.resolution || '';
  showResolution();
  drawAudit(a.audit || []);
}

function drawAudit(entries) {
  $('#audit').replaceChildren(...entries.map((e) => el('li', {},
    el('span', { class: 'muted', text: `${fullTime(e.at)} ${e.actor_name || e.actor}: ` }),
    Object.entries(e.changes || {}).map(([k, v]) => `${k} ${v.from ?? '—'} → ${v.to ?? '—'}`).join('; '),
    e.comment ? el('q', { text: e.comment }) : null)));
  if (!entries.length) $('#audit').append(el('li', { class: 'muted', text: 'No changes yet.' }));
}

function showResolution() {
  const closing = $('#t-status').value === 'closed';
  show($('#t-resolution-field'), closing);
  $('#t-resolution').required = closing;
}

async function triage(event) {
  event.preventDefault();
  const a = state.alert;
  if (!a) return;
  const change = { status: $('#t-status').value };
  if (change.status === 'closed') {
    const reason = $('#t-resolution').value;
    if (!reason) throw new Error('Choose a reason for closing: true positive, benign true positive or false positive.');
    change.resolution = reason;
  }
  const comment = $('#t-comment').value.trim();
  if (comment) change.comment = comment;
  const updated = await api(`/alerts/${encodeURIComponent(a.id)}`, { method: 'PATCH', body: change, label: 'Saving…' });
  Object.assign(a, updated);
  a.audit = await api(`/alerts/${encodeURIComponent(a.id)}/audit`);
  $('#t-comment').value = '';
  const row = state.alerts.find((x) => x.id === a.id);
  if (row) Object.assign(row, updated);
  drawAlertPanel();
  drawAlerts();
  notice(`Alert set to ${updated.status}${updated.resolution ? ` (${RESOLUTIONS[updated.resolution]})` : ''}.`);
}

// -- rule exceptions from an alert ----------------------------------------------------------
async function loadExceptions() {
  const a = state.alert;
  if (!a) return;
  const [options, current] = await Promise.all([
    api(`/alerts/${encodeURIComponent(a.id)}/exceptions/options`),
    api(`/exceptions${query({ rule: a.rule_id })}`),
  ]);
  if (!state.alert || state.alert.id !== a.id) return;
  $('#x-options').replaceChildren(...options.map((o, i) => el('label', { class: 'choice' },
    el('input', { type: 'radio', name: 'x-choice', value: String(i), 'data-kind': o.kind, required: true }),
    el('span', { text: o.label }))));
  if (!options.length) $('#x-options').append(el('p', { class: 'muted', text: 'This alert names nothing to except.' }));
  state.exceptionOptions = options;
  $('#x-count').textContent = current.length ? `(${current.length})` : '';
  $('#x-list').replaceChildren(...current.map((x) => el('li', { 'data-exception': x.id },
    el('span', { text: `${x.kind}${x.role ? ` (${x.role})` : ''} = ${x.value}` }),
    el('span', { class: 'muted', text: ` · ${x.created_by_name || x.created_by}, ${fullTime(x.created_at)}` }),
    x.comment ? el('q', { text: x.comment }) : null,
    el('button', { type: 'button', class: 'secondary', onclick: guarded(() => removeException(x)) }, 'Remove'))));
  if (!current.length) $('#x-list').append(el('li', { class: 'muted', text: 'No exception of this rule yet.' }));
}

async function addException(event) {
  event.preventDefault();
  const a = state.alert;
  const picked = document.querySelector('input[name="x-choice"]:checked');
  if (!a || !picked) throw new Error('Choose what the exception covers.');
  const option = state.exceptionOptions[Number(picked.value)];
  const comment = $('#x-comment').value.trim();
  const made = await api(`/alerts/${encodeURIComponent(a.id)}/exceptions`, {
    method: 'POST', label: 'Adding the exception…',
    body: { kind: option.kind, role: option.role, value: option.value, ...(comment ? { comment } : {}) },
  });
  $('#x-comment').value = '';
  a.audit = await api(`/alerts/${encodeURIComponent(a.id)}/audit`);
  drawAudit(a.audit);
  await loadExceptions();
  notice(`Exception added to ${a.rule_name || a.rule_id}: ${made.kind} = ${made.value}.`);
}

async function removeException(x) {
  await api(`/exceptions/${encodeURIComponent(x.id)}`, { method: 'DELETE', label: 'Removing…' });
  if (state.alert) {
    state.alert.audit = await api(`/alerts/${encodeURIComponent(state.alert.id)}/audit`);
    drawAudit(state.alert.audit);
  }
  await loadExceptions();
  notice(`Exception removed: ${x.kind} = ${x.value}.`);
}

// -- hunts ----------------------------------------------------------------------------------
async function loadHunts(selectId) {
  const hunts = await api('/hunts');
  state.hunts = hunts;
  const select = $('#h-pick');
  select.replaceChildren(
    el('optgroup', { label: 'Shipped' }, ...hunts.filter((h) => h.shipped).map((h) => el('option', { value: h.id, text: h.name }))),
    el('optgroup', { label: 'Saved here' }, ...hunts.filter((h) => !h.shipped).map((h) => el('option', { value: h.id, text: h.name }))));
  if (selectId) select.value = selectId;
  drawHunt();
}

function currentHunt() {
  return (state.hunts || []).find((h) => h.id === $('#h-pick').value);
}

function drawHunt() {
  const hunt = currentHunt();
  if (!hunt) return;
  $('#h-desc').textContent = hunt.description || '';
  $('#h-query').value = hunt.query;
  show($('#h-delete'), !hunt.shipped);
  $('#h-params').replaceChildren(...hunt.parameters.map((p) => {
    const id = `hp-${p.name}`;
    const value = Array.isArray(p.default) ? p.default.join(', ') : (p.default ?? '');
    return el('div', { class: 'field' },
      el('label', { for: id, text: `${p.label || p.name}${p.type === 'list' ? ' (comma-separated)' : ''}` }),
      el('input', { id, 'data-param': p.name, 'data-type': p.type, type: p.type === 'int' ? 'number' : 'text', value: String(value), required: p.required || null, spellcheck: 'false' }));
  }));
}

function huntParameters(hunt) {
  const out = {};
  for (const p of hunt.parameters) {
    const raw = $(`#hp-${p.name}`).value.trim();
    if (p.required && !raw) throw new Error(`The hunt needs ${p.label || p.name}.`);
    if (p.type === 'int') {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new Error(`${p.label || p.name} must be a whole number.`);
      out[p.name] = n;
    } else if (p.type === 'list') out[p.name] = raw ? raw.split(',').map((x) => x.trim()).filter(Boolean) : [];
    else out[p.name] = raw;
  }
  return out;
}

const DISPLAY = {
  Process: (p) => (p.pid !== undefined && p.pid !== null ? `${p.name || p.image || p.uid} (${p.pid})` : String(p.name || p.image || p.uid)),
  File: (p) => String(p.name || p.path),
  Connection: (p) => `${p.hostname || p.ip}:${p.port}`,
  Domain: (p) => String(p.name),
  Host: (p) => String(p.name),
  Alert: (p) => String(p.rule_name || p.id),
  // k1
  RegistryKey: (p) => String(p.name || p.path),
  Pipe: (p) => String(p.name),
  WmiObject: (p) => `${p.kind}: ${p.name}`,
};

// Nodes, relationships and paths anywhere in the rows, as Cytoscape elements.
function huntElements(rows) {
  const nodes = new Map();
  const edges = new Map();
  const visit = (v) => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (v.labels && v.properties && v.id) {
      const kind = v.labels.find((l) => DISPLAY[l]) || v.labels[0] || 'Node';
      if (!nodes.has(v.id)) {
        nodes.set(v.id, { data: { ...v.properties, id: v.id, kind, label: (DISPLAY[kind] || ((p) => v.id))(v.properties) }, classes: kind.toLowerCase() });
      }
      return;
    }
    if (v.type && v.properties && 'start' in v && 'end' in v) {
      if (v.start && v.end) {
        const id = `${v.type}:${v.start}->${v.end}`;
        edges.set(id, { data: { ...v.properties, id, source: v.start, target: v.end, label: v.type }, classes: v.type.toLowerCase() });
      }
      return;
    }
    if (v.nodes && v.relationships) { visit(v.nodes); visit(v.relationships); return; }
    Object.values(v).forEach(visit);
  };
  rows.forEach((row) => Object.values(row).forEach(visit));
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

function cellText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v) ? fullTime(v) : String(v);
  if (v.labels && v.properties) {
    const kind = v.labels.find((l) => DISPLAY[l]) || v.labels[0];
    return `${kind}: ${(DISPLAY[kind] || (() => v.id))(v.properties)}`;
  }
  if (v.type && v.properties) return v.type;
  if (Array.isArray(v)) return v.map(cellText).join(', ');
  return JSON.stringify(v);
}

async function runHunt(event) {
  event.preventDefault();
  const hunt = currentHunt();
  if (!hunt) throw new Error('Choose a hunt first.');
  const parameters = huntParameters(hunt);
  const res = await api('/query/cypher', { method: 'POST', body: { query: $('#h-query').value, parameters }, label: 'Hunting…' });
  state.huntResult = res;
  $('#h-table thead').replaceChildren(el('tr', {}, ...res.columns.map((c) => el('th', { scope: 'col', text: c }))));
  $('#h-table tbody').replaceChildren(...res.rows.map((row) => el('tr', {}, ...res.columns.map((c) => el('td', { text: cellText(row[c]) })))));
  const elements = huntElements(res.rows);
  $('#h-summary').textContent = `${res.row_count} row(s)${res.truncated ? ` (cut at ${res.max_rows})` : ''}; ${elements.nodes.length} node(s) drawn in the graph.`;
  show($('#hunt-results'), true);
  if (elements.nodes.length) {
    state.alert = null;
    state.reopen = null;
    drawAlertPanel();
    drawAlerts();
    await draw(prepare(elements, { keep: elements.nodes.map((n) => n.data.id) }), { kind: 'hunt', title: `Hunt: ${hunt.name}`, sub: `${res.row_count} row(s)`, truncated: res.truncated });
    frame(graph.cy, graph.cy.nodes());
  }
  notice(`${hunt.name}: ${res.row_count} row(s).`);
}

async function saveHunt() {
  const base = currentHunt();
  const name = $('#h-name').value.trim();
  if (!name) throw new Error('Give the hunt a name to save it under.');
  const saved = await api('/hunts', {
    method: 'POST', label: 'Saving the hunt…',
    body: { name, description: base ? base.description : '', query: $('#h-query').value, parameters: base ? base.parameters : [] },
  });
  $('#h-name').value = '';
  await loadHunts(saved.id);
  notice(`Hunt saved: ${saved.name}.`);
}

async function deleteHunt() {
  const hunt = currentHunt();
  if (!hunt || hunt.shipped) return;
  await api(`/hunts/${encodeURIComponent(hunt.id)}`, { method: 'DELETE', accept: 'text/plain', label: 'Deleting…' });
  await loadHunts();
  notice(`Hunt deleted: ${hunt.name}.`);
}

// -- drawing and exploring ------------------------------------------------------------------
async function draw(prepared, view) {
  if ($('.graph-area').classList.contains('account-mode')) await closeAccount();
  const arrived = performance.now();
  state.view = view;
  state.selected = null;
  show($('#node-panel'), false);
  const timing = await render(graph, prepared);
  const record = { nodes: prepared.nodes.length, edges: prepared.edges.length, ...timing, sinceArrivalMs: performance.now() - arrived };
  state.metrics.renders.push(record);
  state.metrics.last = record;
  $('#graph-title').textContent = view.title;
  $('#graph-sub').textContent = `${view.sub || ''} · ${prepared.nodes.length} nodes, ${prepared.edges.length} edges`;
  warnTruncated(view.truncated);
  drawNodeList();
  graph.cy.resize(); // the header above may have changed height
  return record;
}

function warnTruncated(truncated) {
  const box = $('#graph-warning');
  const select = $('#g-budget');
  const budget = Number(select.value);
  const higher = [...select.options].map((o) => Number(o.value)).filter((v) => v > budget);
  box.replaceChildren();
  if (truncated) {
    box.append(el('span', {
      text: `Truncated: the walk stopped at the node budget (${budget}) or the depth limit, and more exists. `,
    }));
    if (higher.length && state.reopen) {
      box.append(el('button', {
        type: 'button', class: 'secondary', id: 'g-raise',
        onclick: guarded(async () => { select.value = String(higher[0]); await state.reopen(); }),
      }, `Raise the budget to ${higher[0]}`));
    } else {
      box.append(el('span', { text: 'Expand nodes to see more around them.' }));
    }
  }
  show(box, Boolean(truncated));
  graph.cy.resize();
}

function selectNode(node) {
  const cy = graph.cy;
  cy.nodes(':selected').unselect();
  node.select();
  state.selected = node.id();
  drawNodePanel(node);
  for (const b of document.querySelectorAll('#nodes-list button')) {
    b.setAttribute('aria-pressed', b.dataset.node === node.id() ? 'true' : 'false');
  }
}

function propRows(data) {
  const hidden = new Set(['id', 'display', 'when', 'label', 'roles', 'members', 'memberEdges', 'member_ids', 'command_line', 'parent_id', 'cursor', 'summary']);
  const rows = [];
  rows.push(el('tr', {}, el('th', { scope: 'row', text: 'id' }), el('td', {}, el('code', { text: data.id }))));
  if (data.roles && data.roles.length) {
    rows.push(el('tr', {}, el('th', { scope: 'row', text: 'role in alert' }), el('td', { text: data.roles.join(', ') })));
  }
  for (const [k, v] of Object.entries(data)) {
    if (hidden.has(k) || v === null || v === undefined || v === '') continue;
    rows.push(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', {}, valueNode(v))));
  }
  return rows;
}

// Long lists (source references) fold away so the panel stays readable.
function valueNode(v) {
  if (Array.isArray(v)) {
    const list = el('ul', {}, ...v.map((item) => el('li', { text: typeof item === 'object' ? JSON.stringify(item) : String(item) })));
    return v.length > 3 ? el('details', {}, el('summary', { text: `${v.length} values` }), list) : list;
  }
  if (v && typeof v === 'object') return el('code', { text: JSON.stringify(v) });
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return document.createTextNode(fullTime(v));
  return document.createTextNode(String(v));
}

function drawNodePanel(node) {
  const data = node.data();
  show($('#node-panel'), true);
  $('#node-title').textContent = `${data.kind === 'Group' ? 'Group' : data.kind}: ${data.label}`;
  const head = [];
  if (data.command_line) {
    head.push(el('tr', {}, el('th', { scope: 'row', text: 'command line' }),
      el('td', {}, el('code', { class: 'cmdline', text: data.command_line }))));
  }
  $('#node-props tbody').replaceChildren(...head, ...propRows(data));
  $('#n-root').disabled = data.kind !== 'Process';
  $('#n-expand').disabled = data.kind === 'Group';
  $('#n-path-from').disabled = data.kind === 'Group';
  show($('#n-unbundle'), data.kind === 'Group');
  const account = accountOf(data);
  show($('#n-account'), Boolean(account));
  $('#n-account').dataset.account = account || '';
  if (data.kind === 'Group' && data.summary) {
    $('#n-unbundle').textContent = data.cursor ? `Show ${FACTS_PAGE} more` : `Show ${Math.min(data.count, FACTS_PAGE)}`;
  } else if (data.kind === 'Group') {
    $('#n-unbundle').textContent = `Show all ${data.count}`;
    const names = data.members.filter((m) => (data.member_ids || []).includes(m.data.id))
      .map((m) => m.data.path || m.data.command_line || m.data.label).join('\n');
    $('#node-props tbody').append(el('tr', {}, el('th', { scope: 'row', text: 'members' }), el('td', { class: 'sources', text: names })));
  }
  const edges = node.connectedEdges().map((e) => {
    const out = e.source().id() === node.id();
    const other = out ? e.target() : e.source();
    const d = e.data();
    const times = d.time ? fullTime(d.time)
      : [d.first_time && fullTime(d.first_time), d.last_time && d.last_time !== d.first_time && fullTime(d.last_time)].filter(Boolean).join(' → ');
    return el('li', {},
      el('span', { class: 'rel', text: out ? `${d.label} →` : `← ${d.label}` }), ' ',
      el('button', { type: 'button', class: 'link', onclick: () => selectNode(other), text: other.data('label') }),
      times ? el('span', { class: 'muted', text: ` ${times}${d.count > 1 ? ` (${d.count}×)` : ''}` }) : null,
      d.sources && d.sources.length ? el('div', { class: 'sources', text: [].concat(d.sources).join('\n') }) : null,
      d.source && typeof d.source === 'string' && d.source !== d.id && !d.source.includes(':') ? null : null);
  });
  $('#node-edges').replaceChildren(...edges);
  if (!edges.length) $('#node-edges').append(el('li', { class: 'muted', text: 'none' }));
  drawEvidence(data.id);
}

function drawEvidence(id) {
  const box = $('#node-evidence');
  const evidence = (state.alert?.evidence || []).filter((e) => e.source === id || e.target === id);
  if (!evidence.length) {
    box.replaceChildren(el('p', { class: 'muted', text: state.alert
      ? 'The open alert holds no raw record for this node; the source references of its edges are listed above.'
      : 'Raw records come with an alert; the source references of this node\'s edges are listed above.' }));
    return;
  }
  box.replaceChildren(...evidence.map((e) => el('details', { open: evidence.length <= 2 },
    el('summary', { text: `${e.relationship} ${fullTime(e.time || e.first_time)}${e.count > 1 ? ` (${e.count}×)` : ''}` }),
    e.sources && e.sources.length ? el('p', { class: 'sources', text: e.sources.join('\n') }) : null,
    el('pre', { text: e.raw === null || e.raw === undefined ? '(no raw record kept)' : JSON.stringify(e.raw, null, 2) }))));
}

function drawNodeList() {
  const filter = $('#nodes-filter').value.trim().toLowerCase();
  const all = graph.cy.nodes();
  const matching = all.filter((n) => !filter || String(n.data('label')).toLowerCase().includes(filter)
    || String(n.data('kind')).toLowerCase().includes(filter));
  const shown = matching.slice(0, 300);
  const items = shown.map((n) => el('li', {}, el('button', {
    type: 'button', class: `node-btn k-${n.data('kind').toLowerCase()}${n.hasClass('entity') ? ' entity' : ''}`,
    'data-node': n.id(), 'aria-pressed': n.id() === state.selected ? 'true' : 'false',
    onclick: () => {
      if (state.picking) { pickNode(n); return; }
      selectNode(n);
      graph.cy.animate({ center: { eles: n }, duration: 0 });
    },
  }, `${n.data('kind')}: ${n.data('label')}`)));
  $('#nodes-list').replaceChildren(...items);
  if (matching.length > shown.length) {
    $('#nodes-list').append(el('li', { class: 'muted', text: `${matching.length - shown.length} more: narrow the filter` }));
  }
  $('#nodes-count').textContent = `(${all.length})`;
}

function selectedNode() {
  const n = state.selected ? graph.cy.getElementById(state.selected) : null;
  if (!n || n.empty()) throw new Error('Select a node first (click it, or pick it in the node list).');
  return n;
}

// A group the API summarised (a count, no members): its members come from /graph/facts, a
// page at a time; the group stays, saying how many are shown, until the last page is in.
const FACTS_PAGE = 100;

async function expandSummary(node) {
  const d = node.data();
  const res = await api(`/graph/facts${query({ node: d.parent_id, rel: d.rel, limit: FACTS_PAGE, cursor: d.cursor })}`,
    { label: 'Loading the group…' });
  const entityIds = graph.cy.nodes('.entity').map((n) => n.id());
  const result = await merge(graph.cy, prepare(res.elements, { group: false }), { anchor: d.parent_id });
  markEntities(graph.cy, entityIds);
  // How many of the group are on screen now: this page's, earlier pages', and any drawn anyway.
  const loaded = graph.cy.getElementById(d.parent_id).outgoers(`edge[label = "${d.rel}"]`).targets()
    .filter((n) => n.data('kind') !== 'Group').length;
  if (res.next_cursor) {
    node.data({ cursor: res.next_cursor, loaded, shown: 0 });
    node.data('display', summaryLabel(node.data()));
  } else {
    graph.cy.batch(() => node.remove());
    await runLayout(graph.cy);
  }
  drawNodeList();
  show($('#node-panel'), false);
  state.selected = null;
  const more = res.next_cursor ? `; ${res.total - loaded} more in the group` : '';
  notice(`${summaryLabel({ ...d, loaded: 0, shown: 0 })}: ${result.added} node(s) shown${more}.`);
}

async function expandGroup(node) {
  if (node.data('summary')) {
    await expandSummary(node);
    return;
  }
  const parentId = node.data('parent_id');
  const entityIds = graph.cy.nodes('.entity').map((n) => n.id());
  const label = node.data('label');
  const result = await openGroup(graph.cy, node, { anchor: parentId });
  markEntities(graph.cy, entityIds);
  drawNodeList();
  show($('#node-panel'), false);
  state.selected = null;
  notice(`${label}: ${result.added} node(s) shown.`);
}

async function unbundleSelected() {
  const node = selectedNode();
  if (node.data('kind') !== 'Group') return;
  await expandGroup(node);
}

async function expandSelected() {
  const node = selectedNode();
  const isHost = node.data('kind') === 'Host';
  const rels = isHost ? [...EXPAND_RELS, 'ON_HOST'] : EXPAND_RELS;
  const sub = await api(`/graph/neighbourhood${query({ node: node.id(), depth: 1, max_nodes: $('#g-budget').value, rel: rels })}`,
    { label: 'Expanding…' });
  const prepared = prepare(sub.elements);
  const entityIds = graph.cy.nodes('.entity').map((n) => n.id());
  const result = await merge(graph.cy, prepared, { anchor: node.id() });
  markEntities(graph.cy, entityIds);
  if (sub.truncated) warnTruncated(true);
  drawNodeList();
  const again = graph.cy.getElementById(node.id());
  selectNode(again);
  focusOn(again);
  notice(result.added ? `${result.added} node(s) added around ${node.data('label')}.` : `Nothing new around ${node.data('label')}.`);
}

function processLabel(p) {
  const name = p.name || p.image || p.uid;
  return p.pid !== null && p.pid !== undefined ? `${name} (${p.pid})` : String(name);
}

async function walkToRoot() {
  const node = selectedNode();
  if (node.data('kind') !== 'Process') throw new Error('Only processes have ancestry.');
  const uid = node.id().slice('Process:'.length);
  const lineage = await api(`/provenance/processes/${encodeURIComponent(uid)}${query({ depth: 0, limit: 1 })}`,
    { label: 'Walking up…' });
  const chain = [...lineage.ancestry, lineage.process];
  const nodes = chain.map((p) => ({ data: { ...p, id: `Process:${p.uid}`, kind: 'Process', label: processLabel(p) }, classes: 'process' }));
  const edges = [];
  for (let i = 1; i < chain.length; i += 1) {
    const source = `Process:${chain[i - 1].uid}`;
    const target = `Process:${chain[i].uid}`;
    edges.push({ data: { id: `SPAWNED:${source}->${target}`, source, target, label: 'SPAWNED', time: chain[i].start_time }, classes: 'spawned' });
  }
  const entityIds = graph.cy.nodes('.entity').map((n) => n.id());
  await merge(graph.cy, prepare({ nodes, edges }));
  markEntities(graph.cy, entityIds);
  const ids = nodes.map((n) => n.data.id);
  highlightPath(graph.cy, ids);
  drawNodeList();
  focusOn(graph.cy.nodes('.path'), { neighbours: false });
  selectNode(graph.cy.getElementById(node.id()));
  const root = chain[0];
  notice(`Root of the tree: ${processLabel(root)}${lineage.truncated ? ' (the ancestry was cut at its hop limit)' : ''}; ${chain.length - 1} step(s) up.`);
}

async function explore(nodeId, title) {
  const depth = nodeId.startsWith('Host:') ? 1 : 2;
  const sub = await api(`/graph/neighbourhood${query({ node: nodeId, depth, max_nodes: $('#g-budget').value, rel: nodeId.startsWith('Host:') ? [...EXPAND_RELS, 'ON_HOST'] : EXPAND_RELS })}`,
    { label: 'Loading the neighbourhood…' });
  state.alert = null;
  state.reopen = () => explore(nodeId, title);
  drawAlertPanel();
  drawAlerts();
  await draw(prepare(sub.elements, { keep: [nodeId] }), { kind: 'explore', title: `Around ${title}`, sub: nodeId, truncated: sub.truncated });
  const start = graph.cy.getElementById(nodeId);
  if (start.nonempty()) {
    selectNode(start);
    focusOn(start);
  }
}

// -- accounts, part 2: an account's page (GET /provenance/accounts/{account}) ---------------
// Opened from the search box ("an account"), a selected Process (its user) or Account node,
// and the open alert's accounts. Hosts, logon sessions (type, time, source, elevated) with the
// processes that ran in each, failed logons and credentials used, drawn where the graph is.
const LOGON_TYPES = {
  2: 'interactive', 3: 'network', 4: 'batch', 5: 'service', 7: 'unlock', 8: 'network cleartext',
  9: 'new credentials', 10: 'remote interactive', 11: 'cached interactive',
  12: 'cached remote interactive', 13: 'cached unlock',
};

function logonType(t) {
  if (t === null || t === undefined) return '—';
  return LOGON_TYPES[t] ? `${t} ${LOGON_TYPES[t]}` : String(t);
}

function accountName(a) {
  if (a.name) return a.domain ? `${a.domain}\\${a.name}` : a.name;
  return a.key;
}

function cell(content, cls) {
  return el('td', cls ? { class: cls } : {}, content instanceof Node ? content : String(content ?? '—'));
}

function table(caption, heads, rows) {
  return el('table', { class: 'acct' }, el('caption', { class: 'sr-only', text: caption }),
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows));
}

function processItem(p) {
  return el('li', {},
    el('button', { type: 'button', class: 'link', 'data-node': `Process:${p.uid}`,
      onclick: guarded(() => closeAccount(() => explore(`Process:${p.uid}`, processLabel(p)))) },
    processLabel(p)),
    p.start_time ? el('span', { class: 'muted', text: ` ${fullTime(p.start_time)}` }) : null,
    p.command_line ? el('span', { class: 'cmd', title: p.command_line, text: p.command_line }) : null);
}

function processList(processes) {
  if (!processes.length) return el('span', { class: 'muted', text: 'no process on record' });
  // the first few in start order are shown, the rest fold away under a count
  const first = 8;
  const list = el('ul', { class: 'acct-procs' }, ...processes.slice(0, first).map(processItem));
  if (processes.length <= first) return list;
  return el('div', {}, list, el('details', {},
    el('summary', { text: `${processes.length - first} more process${processes.length - first > 1 ? 'es' : ''}` }),
    el('ul', { class: 'acct-procs' }, ...processes.slice(first).map(processItem))));
}

function actionText(x) {
  const verb = { ACCESSED_SHARE: 'share', INSTALLED_SERVICE: 'installed service', CHANGED_TASK: 'task' }[x.kind] || x.kind;
  const extra = (x.relative_targets || []).slice(0, 3).join(', ') || x.image_path || (x.ops || []).join(', ');
  return `${verb} ${x.target}${extra ? ` (${extra})` : ''}${x.count > 1 ? ` ×${x.count}` : ''}`;
}

function drawAccount(activity) {
  const a = activity.account;
  const parts = [];
  const logons = activity.hosts.flatMap((h) => h.logons);
  const processCount = activity.hosts.reduce((n, h) => n + h.processes.length
    + h.logons.reduce((m, s) => m + s.processes.length, 0), 0);
  parts.push(el('h3', { text: accountName(a) }), el('dl', { class: 'facts' },
    ...fact('SID', a.sid ? el('code', { text: a.sid }) : null),
    ...fact('Names', (a.names || []).join(', ')),
    ...fact('Also known as', (a.aliases || []).join(', ')),
    ...fact('Hosts', activity.hosts.map((h) => h.host).join(', ') || 'none on record'),
    ...fact('Logons', logons.length),
    ...fact('Processes', processCount),
    ...fact('Failed logons', activity.failed_logons.reduce((n, f) => n + (f.count || 0), 0) || null),
  ));
  if (activity.truncated) parts.push(el('p', { class: 'warning', text: 'A list was cut at its limit: the account did more than is shown.' }));
  for (const h of activity.hosts) {
    parts.push(el('h4', { text: `On ${h.host}` }));
    if (h.logons.length) {
      const rows = [];
      for (const s of h.logons) {
        const l = s.logon;
        rows.push(el('tr', { class: 'session', 'data-logon': l.key },
          cell(el('code', { text: l.logon_id })), cell(logonType(l.logon_type)),
          cell(fullTime(l.start_time) || '—', 'when'), cell(fullTime(l.end_time) || '—', 'when'),
          cell([l.source_ip, l.workstation].filter(Boolean).join(' · ') || 'local'),
          cell(l.elevated ? el('span', { class: 'pill', text: 'elevated' }) : 'no'),
          cell(l.auth_package || '—')));
        rows.push(el('tr', {}, el('td', { colspan: 7 }, processList(s.processes),
          s.actions.length ? el('div', { class: 'muted small', text: s.actions.map(actionText).join('; ') }) : null)));
      }
      parts.push(table(`Logons on ${h.host}`, ['Logon', 'Type', 'Start', 'End', 'From', 'Elevated', 'Package'], rows));
    }
    if (h.processes.length) {
      parts.push(el('p', { class: 'muted small', text: 'Ran as the account outside a known session:' }), processList(h.processes));
    }
  }
  if (activity.actions.length) {
    parts.push(el('h4', { text: 'Done with no session named' }),
      el('ul', { class: 'acct-procs' }, ...activity.actions.map((x) => el('li', { text: `${x.host}: ${actionText(x)}` }))));
  }
  parts.push(el('h3', { text: 'Failed logons' }));
  parts.push(activity.failed_logons.length ? table('Failed logons', ['Host', 'Count', 'First', 'Last', 'Type', 'From', 'Reason'],
    activity.failed_logons.map((f) => el('tr', {}, cell(f.host), cell(f.count, 'num'),
      cell(fullTime(f.first_time), 'when'), cell(fullTime(f.last_time), 'when'),
      cell(f.logon_types.map(logonType).join(', ') || '—'), cell(f.source_ips.join(', ') || '—'),
      cell([...f.failure_reasons, ...f.statuses, ...f.sub_statuses].join(', ') || '—'))))
    : el('p', { class: 'muted', text: 'None on record.' }));
  parts.push(el('h3', { text: 'Credentials used by' }));
  parts.push(activity.credentials_used_by.length ? table('Processes that used these credentials', ['Process', 'Count', 'First', 'Last', 'Target servers'],
    activity.credentials_used_by.map((c) => el('tr', {}, el('td', {}, el('ul', { class: 'acct-procs' }, processItem(c.process))),
      cell(c.count, 'num'), cell(fullTime(c.first_time), 'when'), cell(fullTime(c.last_time), 'when'),
      cell(c.target_servers.join(', ') || '—'))))
    : el('p', { class: 'muted', text: 'No process used them explicitly (4648).' }));
  return el('article', { class: 'account', 'data-account': a.key }, ...parts);
}

async function openAccount(name) {
  const text = String(name || '').trim();
  if (!text) throw new Error('Name an account: DOMAIN\\name, a name or a SID.');
  const body = await api(`/provenance/accounts/${encodeURIComponent(text)}`, { label: 'Loading the account…' });
  $('#account-title').textContent = body.accounts.length === 1
    ? `Account ${accountName(body.accounts[0].account)}` : `Accounts named ${text}`;
  $('#account-body').replaceChildren(...body.accounts.map(drawAccount));
  $('.graph-area').classList.add('account-mode');
  $('#main').classList.add('account-mode');
  show($('#account-view'), true);
  $('#account-view').scrollTop = 0;
  $('#a-back').focus();
}

async function closeAccount(then) {
  $('.graph-area').classList.remove('account-mode');
  $('#main').classList.remove('account-mode');
  show($('#account-view'), false);
  if (graph.cy) graph.cy.resize();
  if (then) await then();
}

// The account a node names: an Account node's key, a Process's user.
function accountOf(data) {
  if (data.kind === 'Account') return data.id.slice('Account:'.length);
  return data.kind === 'Process' && data.user ? data.user : null;
}

// The accounts the open alert's entities name, as buttons for its panel.
function alertAccounts() {
  if (!graph.cy) return [];
  const names = new Map();
  for (const n of graph.cy.nodes('.entity')) {
    const name = accountOf(n.data());
    if (name && !names.has(name.toLowerCase())) names.set(name.toLowerCase(), name);
  }
  return [...names.values()];
}

// -- search ---------------------------------------------------------------------------------
// Processes, files and hosts come from /search; addresses from the contacts endpoint, which
// also says who talked to them.
function resultItem(label, detail, nodeId, title) {
  return el('li', {}, el('button', {
    type: 'button', class: 'link', 'data-node': nodeId, onclick: guarded(() => explore(nodeId, title)),
  }, label), detail ? el('div', { class: 'muted small', text: detail }) : null);
}

async function search(event) {
  event.preventDefault();
  const kind = $('#s-kind').value;
  const raw = $('#s-q').value.trim();
  const q = raw.toLowerCase();
  const list = $('#search-results');
  list.replaceChildren();
  if (!raw) return;
  let items = [];
  if (kind === 'account') {
    await openAccount(raw);
    return;
  }
  if (kind !== 'address') {
    const res = await api(`/search${query({ q: raw, kind, limit: 50 })}`, { label: 'Searching…' });
    items = res.hits.map((h) => resultItem(
      h.host && kind !== 'host' ? `${h.label} on ${h.host}` : h.label,
      [h.time ? fullTime(h.time) : '', h.detail || ''].join(' ').trim(), h.id, h.label));
  } else {
    const isIp = /^[0-9.]+$|:/.test(raw);
    const res = await api(`/provenance/contacts${query(isIp ? { ip: raw } : { hostname: q })}`, { label: 'Searching…' });
    for (const c of res.connections) {
      const conn = c.connection;
      const who = c.contacts.map((x) => processLabel(x.process)).slice(0, 5).join(', ');
      items.push(resultItem(`${conn.hostname || conn.ip}:${conn.port}/${conn.protocol}`, `contacted by ${who || 'nobody on record'}`, `Connection:${conn.key}`, `${conn.ip}:${conn.port}`));
    }
    for (const d of res.domains) {
      const who = d.resolvers.map((x) => processLabel(x.process)).slice(0, 5).join(', ');
      items.push(resultItem(d.domain.name, `resolved by ${who || '—'}; answers ${(d.answers || []).join(', ')}`, `Domain:${d.domain.name}`, d.domain.name));
    }
  }
  if (!items.length) items = [el('li', { class: 'muted', text: 'Nothing found.' })];
  list.replaceChildren(...items);
}

// -- paths ----------------------------------------------------------------------------------
function startPick(node) {
  state.picking = { from: node.id(), label: node.data('label') };
  clearHighlight(graph.cy);
  node.addClass('pick');
  const box = $('#graph-pick');
  box.replaceChildren(el('span', { text: `Path from ${node.data('label')}: now click the node to reach (or pick it in the node list). ` }),
    el('button', { type: 'button', class: 'secondary', onclick: () => stopPick('Path search cancelled.') }, 'Cancel'));
  show(box, true);
}

function stopPick(message) {
  state.picking = null;
  graph.cy.nodes('.pick').removeClass('pick');
  show($('#graph-pick'), false);
  if (message) notice(message);
}

function pickNode(node) {
  const { from } = state.picking;
  if (node.id() === from) return;
  stopPick();
  guarded(() => showPath(from, node.id()))();
}

async function showPath(from, to) {
  const res = await api(`/graph/path${query({ from, to })}`, { label: 'Finding a path…' });
  if (!res.found) {
    notice(`No provenance path within ${res.max_hops} hops between these nodes.`);
    return;
  }
  const entityIds = graph.cy.nodes('.entity').map((n) => n.id());
  await merge(graph.cy, prepare(res.elements, { group: false }), { anchor: from });
  markEntities(graph.cy, entityIds);
  highlightPath(graph.cy, res.path, { anyEdge: true });
  drawNodeList();
  frame(graph.cy, graph.cy.nodes('.path'));
  state.path = res.path;
  const names = res.path.map((id) => graph.cy.getElementById(id).data('label') || id);
  notice(`Path of ${res.path.length - 1} hop(s): ${names.join(' → ')}`);
}

// -- exports --------------------------------------------------------------------------------
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function exportName(ext) {
  const base = state.alert ? `alert-${state.alert.id.slice(0, 12)}` : 'graph';
  return `provgraph-${base}-${new Date().toISOString().replace(/[:.]/g, '').slice(0, 15)}.${ext}`;
}

function requireGraph() {
  if (graph.cy.nodes().empty()) throw new Error('Nothing on screen to export yet.');
}

// -- wiring ---------------------------------------------------------------------------------
const graph = new GraphView($('#cy'), {
  onTap: (node) => {
    hideTip();
    if (state.picking) { pickNode(node); return; }
    if (node.data('kind') === 'Group') { guarded(() => expandGroup(node))(); return; }
    selectNode(node);
  },
  onBackgroundTap: () => hideTip(),
  onHover: (node, at) => showTip(node, at),
  onHoverEnd: () => hideTip(),
});

// -- hover: the whole text of what a node's label cuts ----------------------------------------
function tipLines(d) {
  const out = [[`${d.kind === 'Group' ? `${d.count} ${d.of === 'Process' ? 'processes' : d.of.toLowerCase() + 's'}` : d.kind}`, d.label]];
  if (d.kind === 'Process') {
    if (d.command_line) out.push(['command line', d.command_line]);
    if (d.image) out.push(['image', d.image]);
    if (d.user) out.push(['user', d.user]);
    if (d.start_time) out.push(['started', fullTime(d.start_time)]);
  } else if (d.kind === 'Group' && d.summary) {
    out.push(['', `Click to show them, ${FACTS_PAGE} at a time`]);
  } else if (d.kind === 'Group') {
    out.push(['', 'Click to show them all']);
  } else if (d.path) out.push(['path', d.path]);
  if (d.roles && d.roles.length) out.push(['role in alert', d.roles.join(', ')]);
  return out;
}

function showTip(node, at) {
  const tip = $('#tip');
  tip.replaceChildren(...tipLines(node.data()).map(([k, v]) => el('div', {},
    k ? el('span', { class: 'muted', text: `${k}: ` }) : null, el('span', { class: k === 'command line' || k === 'path' ? 'mono' : '', text: v }))));
  const box = $('#cy').getBoundingClientRect();
  const p = node.renderedPosition();
  const x = Math.min(box.width - 20, Math.max(0, (at ? at.x : p.x) + 14));
  tip.style.left = `${Math.min(x, box.width - 340)}px`;
  tip.style.top = `${(at ? at.y : p.y) + 18}px`;
  show(tip, true);
}

function hideTip() {
  show($('#tip'), false);
}

function wire() {
  $('#signin-form').addEventListener('submit', guarded(signIn));
  $('#sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('#filters').addEventListener('submit', guarded(async (e) => { e.preventDefault(); await loadAlerts(); }));
  $('#f-reset').addEventListener('click', guarded(async () => {
    $('#f-status').value = 'open';
    $('#f-severity').value = '';
    $('#f-rule').value = '';
    $('#f-host').value = '';
    $('#f-assignee').value = '';
    await loadAlerts();
  }));
  $('#f-refresh').addEventListener('click', guarded(loadAlerts));
  $('#f-assignee').addEventListener('input', () => drawAlerts());
  for (const b of document.querySelectorAll('#alerts thead button.sort')) {
    b.addEventListener('click', () => sortBy(b.dataset.sort || b.closest('th').dataset.sort));
  }
  $('#f-incidents').addEventListener('click', guarded(toggleIncidents));
  $('#triage').addEventListener('submit', guarded(triage));
  $('#t-status').addEventListener('change', showResolution);
  $('#exception-form').addEventListener('submit', guarded(addException));
  $('#hunt').addEventListener('submit', guarded(runHunt));
  $('#h-pick').addEventListener('change', drawHunt);
  $('#h-save').addEventListener('click', guarded(saveHunt));
  $('#h-delete').addEventListener('click', guarded(deleteHunt));
  $('#search').addEventListener('submit', guarded(search));
  $('#n-account').addEventListener('click', guarded(() => openAccount($('#n-account').dataset.account)));
  $('#a-back').addEventListener('click', guarded(() => closeAccount()));
  $('#n-expand').addEventListener('click', guarded(expandSelected));
  $('#n-root').addEventListener('click', guarded(walkToRoot));
  $('#n-unbundle').addEventListener('click', guarded(unbundleSelected));
  $('#n-center').addEventListener('click', guarded(async () => graph.cy.center(selectedNode())));
  $('#g-fit').addEventListener('click', () => graph.cy.fit(undefined, 24));
  $('#g-frame').addEventListener('click', () => { if (state.alert) frameAlert(); });
  $('#n-path-from').addEventListener('click', guarded(async () => startPick(selectedNode())));
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.picking) stopPick('Path search cancelled.'); });
  $('#g-zoom-in').addEventListener('click', () => zoomBy(1.25));
  $('#g-zoom-out').addEventListener('click', () => zoomBy(0.8));
  $('#g-relayout').addEventListener('click', guarded(() => runLayout(graph.cy)));
  $('#g-clear').addEventListener('click', () => clearHighlight(graph.cy));
  $('#nodes-filter').addEventListener('input', () => drawNodeList());
  $('#x-png').addEventListener('click', guarded(async () => { requireGraph(); download(await toPng(graph.cy), exportName('png')); }));
  $('#x-graphml').addEventListener('click', guarded(async () => {
    requireGraph();
    download(new Blob([toGraphML(graph.cy)], { type: 'application/graphml+xml' }), exportName('graphml'));
  }));
  $('#x-json').addEventListener('click', guarded(async () => {
    requireGraph();
    download(new Blob([JSON.stringify(toJson(graph.cy), null, 2)], { type: 'application/json' }), exportName('json'));
  }));
}

function zoomBy(factor) {
  const cy = graph.cy;
  cy.zoom({ level: cy.zoom() * factor, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
}

// For the end-to-end tests' measurements: draw a given element list through the same path
// the console uses, and time the handlers a person triggers.
window.provgraph = {
  get cy() { return graph.cy; },
  state,
  async drawElements(elements, title = 'Test graph', options = {}) {
    return draw(prepare(elements, options), { kind: 'explore', title, sub: 'given elements' });
  },
  async timeInteractions() {
    const cy = graph.cy;
    const node = cy.nodes()[Math.floor(cy.nodes().length / 2)];
    const out = {};
    let t = performance.now();
    cy.panBy({ x: 120, y: 60 });
    await nextFrame();
    out.panMs = performance.now() - t;
    t = performance.now();
    cy.zoom({ level: cy.zoom() * 1.5, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
    await nextFrame();
    out.zoomMs = performance.now() - t;
    t = performance.now();
    node.emit('tap');
    await nextFrame();
    out.tapMs = performance.now() - t;
    t = performance.now();
    cy.fit(undefined, 24);
    await nextFrame();
    out.fitMs = performance.now() - t;
    return out;
  },
  shortTime,
};

wire();
if (signedIn()) {
  showSignedIn();
  guarded(async () => { await Promise.all([loadRules(), loadAlerts(), loadHunts()]); })();
} else {
  signOut();
}
