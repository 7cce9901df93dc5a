// bootd's status page. No framework: the page asks bootd's admin API (with the token the
// user typed, kept for this tab only) and long-polls /api/v1/watch to hear of changes.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY = 'bootd-token';
const POLL_BACKOFF_MS = 2000;

let token = sessionStorage.getItem(KEY) || '';
let version = '';
let selected = null; // MAC of the machine whose timeline is open
let generation = 0; // bumped on sign-in and sign-out: stale loops stop
let watchAbort = null;

class AuthError extends Error {}

async function api(path, signal) {
  const r = await fetch('/api/v1' + path, {
    headers: { Authorization: 'Bearer ' + token },
    cache: 'no-store',
    signal,
  });
  if (r.status === 401 || r.status === 403) throw new AuthError('bootd did not accept the token');
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

// ---- small DOM helpers: text only, never HTML from bootd ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(v, dash = '—') {
  return v === null || v === undefined || v === '' ? dash : String(v);
}

function when(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  if (isNaN(d)) return el('span', { text: iso });
  const today = new Date().toDateString() === d.toDateString();
  const text = today ? d.toLocaleTimeString() : d.toLocaleString();
  return el('time', { datetime: iso, title: iso, text });
}

const STATE_CLASS = {
  joined: 's-ok', ready: 's-ok', synced: 's-ok', running: 's-ok', done: 's-ok',
  installing: 's-warn', 'config-served': 's-warn', booting: 's-warn', held: 's-warn',
  syncing: 's-warn', waiting: 's-warn', bootstrapping: 's-warn',
  discovered: 's-idle', assigned: 's-idle', idle: 's-idle',
  failed: 's-bad', error: 's-bad', degraded: 's-bad',
};

function badge(text) {
  const t = show(text);
  return el('span', { class: 'badge ' + (STATE_CLASS[t] || 's-idle'), text: t });
}

function kv(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    if (v === undefined) continue;
    dl.append(el('dt', { text: k }), el('dd', {}, v instanceof Node ? v : show(v)));
  }
}

// ---- rendering ----

function renderCluster(st) {
  const c = st.cluster_state || {};
  const b = c.bootstrap || {};
  const k = c.kubernetes || {};
  const cil = k.cilium || {};
  const phase = el('span', {}, badge(c.phase), ' ', show(c.message, ''));
  let boot;
  if (b.done) boot = `done (${show(b.outcome)} on ${show(b.called_on)})`;
  else boot = `not done, ${b.attempts || 0} calls` + (b.last_error ? `; last: ${b.last_error}` : '');
  const rows = [
    ['Phase', phase],
    ['Since', when(c.since) || '—'],
    ['Bootstrap', `${show(b.mode)}, node ${show(b.node)}: ${boot}`],
    ['Kubernetes', k.api ? k.api : 'not answering yet'],
    ['Nodes', k.nodes !== undefined ? `${k.joined || 0} of the lab's machines joined, ${k.nodes} nodes` : undefined],
    ['Cilium', cil.status ? cil.status : 'not seen yet'],
  ];
  const backups = c.etcd_backups || c.backups;
  if (backups) {
    const last = Array.isArray(backups) ? backups[backups.length - 1] : backups;
    rows.push(['etcd backup', last ? (last.time || last.at || last.file || JSON.stringify(last)) : 'none yet']);
  }
  kv($('cluster'), rows);
}

function renderService(o) {
  const st = o.status;
  $('cluster-name').textContent = st.cluster ? '· ' + st.cluster : '';
  document.title = st.cluster ? `bootd · ${st.cluster}` : 'bootd';
  kv($('service'), [
    ['Lab', el('code', { text: show(st.lab) })],
    ['Reload', st.reload_error ? el('span', { class: 's-bad', text: 'FAILED, previous lab still served: ' + st.reload_error }) : 'ok'],
    ['dnsmasq', show(st.dnsmasq)],
    ['Version', show(o.bootd)],
    ['Signed in as', o.scope ? o.scope : undefined],
  ]);
}

function objList(title, arr, key) {
  if (!Array.isArray(arr) || !arr.length) return null;
  return el('div', {}, el('h3', { text: `${title} (${arr.length})` }),
    el('ul', { class: 'objs' }, ...arr.slice(0, 20).map((e) =>
      el('li', {}, el('code', { text: show(e.object) }), ' ', show(e[key], '')))));
}

function renderGitops(g) {
  const lists = $('gitops-lists');
  lists.replaceChildren();
  if (!g) {
    kv($('gitops'), [['State', 'not configured (lab.yaml has no gitops section)']]);
    return;
  }
  const last = g.last_sync;
  let lastText = 'never';
  if (last && typeof last === 'object') {
    lastText = el('span', {}, badge(last.ok ? 'synced' : 'failed'), ' ', when(last.finished) || '',
      ` · ${last.applied || 0} applied, ${last.unchanged || 0} unchanged, ${last.pruned || 0} pruned, ` +
      `${last.failed || 0} failed, ${last.unhealthy || 0} unhealthy`);
  }
  kv($('gitops'), [
    ['State', badge(g.state)],
    ['Waiting for', g.waiting_for || undefined],
    ['Repository', `${show(g.repo)} (ref ${show(g.ref)})`],
    ['Revision', el('code', { text: show(g.revision) })],
    ['Applied', el('code', { text: show(g.applied_revision) })],
    ['Last sync', lastText],
    ['Next sync', when(g.next_sync) || '—'],
    ['Last error', g.last_error ? el('span', { class: 's-bad', text: g.last_error }) : '—'],
  ]);
  if (Array.isArray(g.groups) && g.groups.length)
    lists.append(el('h3', { text: 'Groups' }), el('ul', { class: 'objs' },
      ...g.groups.map((x) => el('li', {}, typeof x === 'string' ? x : `${show(x.name)}: ${show(x.status || x.state, '')}`))));
  const d = last && last.detail;
  if (d) {
    for (const part of [objList('Unhealthy', d.unhealthy, 'status'), objList('Failed', d.failed, 'error'),
      objList('Pruned', d.pruned, 'result')])
      if (part) lists.append(part);
  }
}

function renderMachines(machines) {
  const tbody = $('machines').tBodies[0];
  const focusedMac = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.mac : null;
  const never = [];
  const counts = {};
  const rows = [];
  for (const m of machines) {
    counts[m.state] = (counts[m.state] || 0) + 1;
    if (!m.last_seen) never.push(m.name || m.mac);
    const pick = el('button', { type: 'button', class: 'link', 'data-mac': m.mac,
      'aria-controls': 'machine', text: m.name || m.mac });
    pick.addEventListener('click', () => openMachine(m.mac, true));
    const tr = el('tr', { 'data-mac': m.mac, 'aria-selected': m.mac === selected ? 'true' : null },
      el('td', { 'data-label': 'Name' }, pick),
      el('td', { 'data-label': 'State' }, badge(m.state), m.boot_failed
        ? el('span', { class: 'badge s-bad', title: m.boot_failed.message, text: 'boot failed' })
        : null),
      el('td', { 'data-label': 'Role' }, show(m.role)),
      el('td', { 'data-label': 'Address' }, show(m.ip)),
      el('td', { 'data-label': 'Firmware' }, show(m.firmware)),
      el('td', { 'data-label': 'Arch' }, show(m.arch)),
      el('td', { 'data-label': 'MAC' }, el('code', { text: m.mac })),
      el('td', { 'data-label': 'Last seen' }, when(m.last_seen) || 'never'));
    tr.addEventListener('click', (ev) => { if (ev.target === tr || ev.target.tagName === 'TD') openMachine(m.mac, false); });
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  if (!machines.length)
    tbody.append(el('tr', {}, el('td', { colspan: 8, text: 'No machines yet: bootd records each machine when it first asks for a boot script.' })));
  $('machine-counts').textContent = '· ' + Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ');
  $('never').textContent = never.length
    ? `Never powered on (${never.length}): ${never.join(', ')}` : '';
  if (focusedMac) {
    const b = tbody.querySelector(`button[data-mac="${CSS.escape(focusedMac)}"]`);
    if (b) b.focus();
  }
}

function eventItem(e) {
  const kind = e.kind || '';
  return el('li', { class: 'k-' + kind }, when(e.time),
    el('span', {}, el('strong', { text: kind }), ` (${show(e.source)}) `, show(e.message, '')));
}

function renderAudit(events) {
  const list = $('audit');
  const items = (events || []).slice(-30).reverse().map(eventItem);
  list.replaceChildren(...items);
  if (!items.length) list.append(el('li', { text: 'No events about unknown machines or tokens.' }));
}

async function loadMachine() {
  if (!selected) return;
  const mac = selected;
  const path = '/machines/' + encodeURIComponent(mac);
  const [m, logs] = await Promise.all([api(path), api(path + '/logs')]);
  if (mac !== selected) return;
  $('machine-title').textContent = `${m.name || m.mac} · ${m.state}`
    + (m.boot_failed ? ` · boot failed: ${m.boot_failed.message}` : '');
  const tl = $('timeline');
  const items = (m.events || []).slice().reverse().map(eventItem);
  tl.replaceChildren(...items);
  if (!items.length) tl.append(el('li', { text: 'No events yet.' }));
  const pre = $('klog');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const lines = (logs.lines || []).slice(-300);
  pre.textContent = lines.length
    ? lines.map((l) => `${l.time ? new Date(l.time).toLocaleTimeString() : ''}  ${l.msg}`).join('\n')
    : 'No kernel log lines from this machine (it sends them once it boots Talos with lan.log_port set).';
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function openMachine(mac, focus) {
  selected = mac;
  $('machine').hidden = false;
  for (const tr of $('machines').tBodies[0].rows)
    tr.setAttribute('aria-selected', tr.dataset.mac === mac ? 'true' : 'false');
  try {
    await loadMachine();
  } catch (e) {
    return failed(e);
  }
  if (focus) $('machine-title').focus();
  $('machine').scrollIntoView({ block: 'nearest' });
}

function closeMachine() {
  const mac = selected;
  selected = null;
  $('machine').hidden = true;
  const b = mac && $('machines').querySelector(`button[data-mac="${CSS.escape(mac)}"]`);
  if (b) b.focus();
}

async function refresh() {
  const o = await api('/overview');
  renderService(o);
  renderCluster(o.status);
  renderGitops(o.gitops);
  renderMachines(o.machines || []);
  renderAudit(o.events);
  if (selected) await loadMachine();
  return o;
}

// ---- live updates ----

function setLive(ok, text) {
  const live = $('live');
  live.className = 'live ' + (ok ? 'ok' : 'bad');
  live.textContent = text;
}

function failed(e) {
  if (e instanceof AuthError) {
    signOut(e.message);
    return;
  }
  if (e && e.name === 'AbortError') return;
  setLive(false, 'bootd unreachable: ' + (e && e.message ? e.message : e));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function watch(gen) {
  while (gen === generation) {
    watchAbort = new AbortController();
    try {
      const j = await api('/watch?since=' + encodeURIComponent(version), watchAbort.signal);
      if (gen !== generation) return;
      if (j.version !== version) {
        const o = await refresh();
        version = o.version || j.version;
      }
      setLive(true, 'live');
    } catch (e) {
      if (gen !== generation) return;
      failed(e);
      if (e instanceof AuthError) return;
      await sleep(POLL_BACKOFF_MS);
    }
  }
}

async function start() {
  const gen = ++generation;
  try {
    const o = await refresh();
    version = o.version || '';
  } catch (e) {
    if (e instanceof AuthError) {
      signOut(token ? 'bootd did not accept that token.' : '');
      return;
    }
    failed(e);
  }
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  setLive(true, 'live');
  watch(gen);
}

function signOut(message) {
  generation++;
  if (watchAbort) watchAbort.abort();
  token = '';
  version = '';
  selected = null;
  sessionStorage.removeItem(KEY);
  // nothing of the lab stays on the page once signed out
  for (const id of ['cluster', 'gitops', 'service', 'gitops-lists', 'timeline', 'audit'])
    $(id).replaceChildren();
  $('machines').tBodies[0].replaceChildren();
  $('klog').textContent = '';
  $('cluster-name').textContent = '';
  $('dash').hidden = true;
  $('machine').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('live').textContent = '';
  $('live').className = 'live';
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    $('login-error').textContent = '';
    start();
  });
  $('logout').addEventListener('click', () => signOut(''));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && selected) closeMachine();
  });
  if (token) start();
  else signOut('');
});
