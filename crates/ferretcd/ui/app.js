// ferretcd's dashboard. One file, no framework, no build step.
//
// Everything here goes through ferretcd's public APIs, with the user's
// token when auth is on: the v3 JSON gateway (/v3/...), the v2 keys API
// (/v2/keys), /metrics and /health of the member that served the page,
// and /v3/maintenance/status and /health of the other members, at their
// client URLs (etcd's CORS headers allow it).
'use strict';

const PAGE = 50; // keys per page
const WATCH_KEEP = 200; // events shown
const HOUR_MS = 3600 * 1000;
const TIMELINE_KEY = 'ferretcd-ui-timeline';

const S = {
  token: sessionStorage.getItem('ferretcd-token') || '',
  // v2 auth is etcd 3.4's other auth store, with basic auth on every
  // request: its credentials live in this page only, never in storage.
  v2auth: '',
  user: sessionStorage.getItem('ferretcd-user') || '',
  authNeeded: false,
  selfId: '', // decimal, as the gateway writes uint64s
  members: [], // the last member list
  knownMembers: null, // id -> name, to see additions and removals
  leaderId: null,
  leaderTerm: 0,
  alarms: null,
  compactRev: null,
  kv: { prefix: '', cursor: null, listed: 0, selected: null, binary: false },
  v2: { key: '', index: 0 }, // the open v2 key and its modifiedIndex
  watch: { ctl: null, prefix: '', rev: 0, on: false },
  metrics: { last: null, at: 0, series: {} },
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- bytes

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function bytesToB64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function b64ToBytes(b64) {
  const s = atob(b64 || '');
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const textB64 = (text) => bytesToB64(enc.encode(text));

function isText(b64) {
  try {
    dec.decode(b64ToBytes(b64));
    return true;
  } catch (_) {
    return false;
  }
}

// "0x" and hex digits as bytes; null for anything else.
function parseHex(text) {
  const m = /^0x((?:[0-9a-fA-F]{2})*)$/.exec(text.trim());
  if (!m) return null;
  return Uint8Array.from(m[1].match(/../g) || [], (h) => parseInt(h, 16));
}

// A key or value as text: UTF-8 when it is, else hex.
function show(b64) {
  const bytes = b64ToBytes(b64);
  try {
    return dec.decode(bytes);
  } catch (_) {
    return '0x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }
}

// The end of the range holding every key that starts with `prefix`
// (etcd's clientv3.GetPrefixRangeEnd); "\0" (every key) for no prefix.
function prefixEndB64(prefixBytes) {
  const end = Uint8Array.from(prefixBytes);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i] += 1;
      return bytesToB64(end.subarray(0, i + 1));
    }
  }
  return bytesToB64(new Uint8Array([0]));
}

const hexId = (dec) => (dec ? BigInt(dec).toString(16) : '');
const num = (v) => Number(v || 0);

function size(n) {
  n = num(n);
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let u = -1;
  do {
    n /= 1024;
    u++;
  } while (n >= 1024 && u < units.length - 1);
  return n.toFixed(1) + ' ' + units[u];
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function status(text, error) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!error);
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(message, code, httpStatus) {
    super(message);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (S.token) h.Authorization = S.token;
  return h;
}

// A JSON gateway call (POST), at `base` (another member's client URL) or
// at this page's member.
async function v3(path, body, base, timeoutMs) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs || 5000);
  try {
    const r = await fetch((base || '') + path, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(body || {}),
      signal: ctl.signal,
    });
    const text = await r.text();
    let data = null;
    try {
      data = JSON.parse(text);
    } catch (_) {
      /* not JSON */
    }
    if (!r.ok || (data && data.error)) {
      const msg = (data && (data.error || data.message)) || text || r.statusText;
      throw new ApiError(msg, data && data.code, r.status);
    }
    return data || {};
  } finally {
    clearTimeout(timer);
  }
}

const needsLogin = (e) =>
  e instanceof ApiError &&
  /user name is empty|invalid auth token|authentication failed|auth: revision in header is old/.test(e.message);

function authFailed(e) {
  if (!needsLogin(e)) return false;
  S.authNeeded = true;
  if (S.token) forget();
  showLogin(true);
  return true;
}

// ----------------------------------------------------------------- auth

function showLogin(on) {
  $('login').classList.toggle('hidden', !on);
  $('main').classList.toggle('hidden', on);
  $('whoami').textContent = S.user && !on ? S.user : '';
  $('logout').classList.toggle('hidden', !S.token || on);
  if (on) $('login-user').focus();
}

function forget() {
  S.token = '';
  S.user = '';
  sessionStorage.removeItem('ferretcd-token');
  sessionStorage.removeItem('ferretcd-user');
}

async function login(ev) {
  ev.preventDefault();
  $('login-error').textContent = '';
  const name = $('login-user').value;
  const password = $('login-password').value;
  try {
    S.token = '';
    const r = await v3('/v3/auth/authenticate', { name, password });
    S.token = r.token;
    S.user = name;
    sessionStorage.setItem('ferretcd-token', S.token);
    sessionStorage.setItem('ferretcd-user', name);
    $('login-password').value = '';
    showLogin(false);
    status('logged in as ' + name);
    refreshCluster();
    listKeys(true);
  } catch (e) {
    $('login-error').textContent = e.message;
  }
}

// Whether this cluster asks for a user: a one-key read without a token.
async function probeAuth() {
  try {
    await v3('/v3/kv/range', { key: textB64('\0'), limit: 1, keys_only: true });
    S.authNeeded = false;
    showLogin(false);
  } catch (e) {
    if (!authFailed(e)) {
      showLogin(false);
      status(e.message, true);
    }
  }
}

// -------------------------------------------------------------- timeline

function timeline() {
  try {
    const all = JSON.parse(localStorage.getItem(TIMELINE_KEY) || '[]');
    return all.filter((e) => Date.now() - e.t < HOUR_MS);
  } catch (_) {
    return [];
  }
}

function addEvent(kind, text) {
  const all = timeline();
  all.unshift({ t: Date.now(), kind, text });
  localStorage.setItem(TIMELINE_KEY, JSON.stringify(all.slice(0, 500)));
  drawTimeline();
}

function drawTimeline() {
  const ul = $('timeline');
  ul.replaceChildren(
    ...timeline().map((e) => el('li', { 'data-kind': e.kind }, clock(e.t) + '  ' + e.text)),
  );
}

// --------------------------------------------------------------- cluster

async function memberStatus(m) {
  // A member's URL of the page's own scheme where it has one: a page
  // served over https may not fetch plain http (mixed content).
  const urls = m.clientURLs || [];
  const base = m.self ? '' : urls.find((u) => u.startsWith(location.protocol + '//')) || urls[0];
  if (base === undefined) return { error: 'no client URL', url: '' };
  const [st, health] = await Promise.allSettled([
    v3('/v3/maintenance/status', {}, base, 900),
    fetch(base + '/health', { signal: AbortSignal.timeout(900) }).then((r) => r.json()),
  ]);
  return {
    url: base || location.origin,
    status: st.status === 'fulfilled' ? st.value : null,
    error: st.status === 'rejected' ? st.reason.message : null,
    healthy: health.status === 'fulfilled' && health.value.health === 'true',
  };
}

async function refreshCluster() {
  if (S.authNeeded && !S.token) return;
  let list;
  try {
    list = await v3('/v3/cluster/member/list', {}, '', 2000);
  } catch (e) {
    if (!authFailed(e)) status('member list: ' + e.message, true);
    return;
  }
  S.selfId = (list.header || {}).member_id || S.selfId;
  const members = (list.members || [])
    .map((m) => ({ ...m, self: m.ID === S.selfId }))
    .sort((a, b) => (a.name || '~').localeCompare(b.name || '~') || a.ID.localeCompare(b.ID));
  S.members = members;
  const results = await Promise.all(members.map(memberStatus));
  members.forEach((m, i) => (m.result = results[i]));

  // The leader: as the member with the newest term that knows one says.
  let leader = null;
  let term = 0;
  for (const m of members) {
    const st = m.result.status;
    if (st && st.leader && st.leader !== '0' && num(st.raftTerm) >= term) {
      leader = st.leader;
      term = num(st.raftTerm);
    }
  }
  const byId = new Map(members.map((m) => [m.ID, m]));
  const leaderStatus = leader && byId.get(leader) && byId.get(leader).result.status;
  const name = (id) => (byId.get(id) && byId.get(id).name) || hexId(id);

  if (leader && leader !== S.leaderId) {
    if (S.leaderId !== null) addEvent('leader', `leader is now ${name(leader)} (term ${term})`);
    S.leaderId = leader;
    S.leaderTerm = term;
  }
  const known = new Map(members.map((m) => [m.ID, m.name || hexId(m.ID)]));
  if (S.knownMembers) {
    for (const [id, n] of known) {
      if (!S.knownMembers.has(id)) addEvent('member-added', `member ${n} (${hexId(id)}) added`);
    }
    for (const [id, n] of S.knownMembers) {
      if (!known.has(id)) addEvent('member-removed', `member ${n} (${hexId(id)}) removed`);
    }
  }
  S.knownMembers = known;

  $('leader').textContent = leader ? name(leader) : '';
  const rows = members.map((m) => {
    const st = m.result.status;
    const role = !st
      ? 'unreachable'
      : m.isLearner
        ? 'learner'
        : st.leader === m.ID
          ? 'leader'
          : 'follower';
    const behind = st && leaderStatus ? Math.max(0, num(leaderStatus.raftIndex) - num(st.raftAppliedIndex)) : '';
    const health = m.result.healthy ? 'healthy' : 'unhealthy';
    const tr = el(
      'tr',
      {
        'data-member-id': hexId(m.ID).padStart(16, '0'),
        'data-name': m.name || '',
        'data-role': role,
        'data-status-url': m.result.url,
      },
      el('td', { class: 'name' + (m.self ? ' self' : ''), title: m.self ? 'this page comes from this member' : '' }, m.name || '(unstarted)'),
      el('td', { class: 'id' }, hexId(m.ID)),
      el('td', { class: 'role' }, role),
      el('td', { class: 'term' }, st ? String(num(st.raftTerm)) : ''),
      el('td', { class: 'commit' }, st ? String(num(st.raftIndex)) : ''),
      el('td', { class: 'applied' }, st ? String(num(st.raftAppliedIndex)) : ''),
      el('td', { class: 'behind' }, String(behind)),
      el('td', { class: 'db-size' }, st ? size(st.dbSize) : ''),
      el('td', { class: 'db-in-use' }, st ? size(st.dbSizeInUse) : ''),
      el('td', { class: 'health ' + health }, health),
      el('td', { class: 'client-urls' }, (m.clientURLs || []).join(' ')),
      el('td', { class: 'peer-urls' }, (m.peerURLs || []).join(' ')),
    );
    if (!st) tr.title = m.result.error || '';
    return tr;
  });
  $('members').tBodies[0].replaceChildren(...rows);
}

async function refreshAlarms() {
  if (S.authNeeded && !S.token) return;
  try {
    const r = await v3('/v3/maintenance/alarm', { action: 'GET' });
    const now = new Set((r.alarms || []).map((a) => `${a.alarm || 'NOSPACE'} on ${hexId(a.memberID)}`));
    if (S.alarms) {
      for (const a of now) if (!S.alarms.has(a)) addEvent('alarm', `alarm raised: ${a}`);
      for (const a of S.alarms) if (!now.has(a)) addEvent('alarm', `alarm cleared: ${a}`);
    }
    S.alarms = now;
  } catch (e) {
    authFailed(e);
  }
}

// The compacted revision: a watch from revision 1 is refused with it.
async function refreshCompaction() {
  if (S.authNeeded && !S.token) return;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 1500);
  let rev = 0;
  try {
    const r = await fetch('/v3/watch', {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ create_request: { key: textB64('\0ferretcd-ui-compaction-probe'), start_revision: '1' } }),
      signal: ctl.signal,
    });
    for await (const msg of jsonLines(r.body)) {
      const res = msg.result || {};
      if (res.compact_revision) rev = num(res.compact_revision);
      if (res.compact_revision || res.created) break;
    }
  } catch (_) {
    /* aborted or refused: nothing learned */
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  if (rev && S.compactRev !== null && rev !== S.compactRev) {
    addEvent('compaction', `compacted up to revision ${rev}`);
  }
  if (rev || S.compactRev === null) S.compactRev = rev;
}

// ----------------------------------------------------------------- keys

function rangeFor(prefixText, cursorB64) {
  const prefix = enc.encode(prefixText);
  const end = prefixEndB64(prefix);
  const start = cursorB64 || (prefix.length ? bytesToB64(prefix) : textB64('\0'));
  return { key: start, range_end: end };
}

async function listKeys(fresh) {
  if (fresh) {
    S.kv.prefix = $('kv-prefix').value;
    S.kv.cursor = null;
    S.kv.listed = 0;
    $('kv-list').replaceChildren();
  }
  try {
    const r = await v3('/v3/kv/range', { ...rangeFor(S.kv.prefix, S.kv.cursor), limit: PAGE, keys_only: true });
    const kvs = r.kvs || [];
    $('kv-list').replaceChildren(
      ...kvs.map((kv) => {
        const li = el('li', { 'data-key': show(kv.key), 'data-b64': kv.key }, show(kv.key));
        li.addEventListener('click', () => openKey(kv.key, li));
        return li;
      }),
    );
    S.kv.listed += kvs.length;
    if (kvs.length) {
      const last = b64ToBytes(kvs[kvs.length - 1].key);
      const next = new Uint8Array(last.length + 1);
      next.set(last);
      S.kv.cursor = bytesToB64(next); // just after the last key
    }
    $('kv-next').disabled = !r.more;
    const more = num(r.count) - kvs.length;
    $('kv-count').textContent =
      `${S.kv.listed} key${S.kv.listed === 1 ? '' : 's'} listed` + (r.more ? `, ${more} more` : '');
  } catch (e) {
    if (!authFailed(e)) status(`listing "${S.kv.prefix}": ${e.message}`, true);
  }
}

async function openKey(keyB64, li) {
  for (const x of $('kv-list').children) x.classList.toggle('selected', x === li);
  try {
    const r = await v3('/v3/kv/range', { key: keyB64 });
    const kv = (r.kvs || [])[0];
    if (!kv) {
      status(`${show(keyB64)}: not found (deleted?)`, true);
      return;
    }
    S.kv.selected = kv;
    // A value that is not UTF-8 is shown, and edited, as hex.
    S.kv.binary = !isText(kv.value);
    $('kv-detail').classList.remove('hidden');
    $('kv-key').textContent = show(kv.key);
    $('kv-value').value = show(kv.value);
    $('kv-value').title = S.kv.binary ? 'not UTF-8: edit it as hex, 0x followed by two digits a byte' : '';
    $('kv-view').textContent = prettyValue(kv.value);
    $('kv-meta').textContent =
      `create revision ${num(kv.create_revision)}, mod revision ${num(kv.mod_revision)}, ` +
      `version ${num(kv.version)}, lease ${kv.lease && kv.lease !== '0' ? hexId(kv.lease) : 'none'}`;
    history(kv);
  } catch (e) {
    if (!authFailed(e)) status(e.message, true);
  }
}

// JSON pretty-printed, or hex for bytes that are not text; nothing more
// to show for plain text.
function prettyValue(b64) {
  let text;
  try {
    text = dec.decode(b64ToBytes(b64));
  } catch (_) {
    return 'binary, hex:\n' + show(b64).slice(2).replace(/(.{64})/g, '$1\n');
  }
  try {
    const v = JSON.parse(text);
    if (typeof v === 'object' && v !== null) return 'JSON:\n' + JSON.stringify(v, null, 2);
  } catch (_) {
    /* not JSON */
  }
  return '';
}

// The key's earlier values, newest first, until its creation or the
// compacted revision.
async function history(kv) {
  const ul = $('kv-history');
  ul.replaceChildren();
  let rev = num(kv.mod_revision) - 1;
  const first = num(kv.create_revision);
  for (let n = 0; n < 20 && rev >= first; n++) {
    let older;
    try {
      const r = await v3('/v3/kv/range', { key: kv.key, revision: String(rev) });
      older = (r.kvs || [])[0];
    } catch (e) {
      ul.append(el('li', {}, /compacted/.test(e.message) ? `older revisions compacted (before ${rev + 1})` : e.message));
      return;
    }
    if (!older) return;
    ul.append(el('li', {}, `rev ${num(older.mod_revision)} (v${num(older.version)}): ${show(older.value)}`));
    rev = num(older.mod_revision) - 1;
  }
}

// `op` (a txn request) on the open key only if nobody changed it since it
// was opened (its mod revision is the same): true if done, else the
// reason is in #status.
async function ifUnchanged(kv, op) {
  const keyText = show(kv.key);
  try {
    const r = await v3('/v3/kv/txn', {
      compare: [{ key: kv.key, result: 'EQUAL', target: 'MOD', mod_revision: kv.mod_revision }],
      success: [op],
      failure: [{ request_range: { key: kv.key } }],
    });
    if (r.succeeded) return true;
    const now = (((r.responses || [])[0] || {}).response_range || {}).kvs || [];
    const was = now.length ? `now at mod revision ${num(now[0].mod_revision)}` : 'deleted';
    status(`${keyText} changed since it was opened (${was}): open it again`, true);
  } catch (e) {
    if (!authFailed(e)) status(`${keyText}: ${e.message}`, true);
  }
  return false;
}

async function saveKey() {
  const kv = S.kv.selected;
  if (!kv) return;
  const keyText = show(kv.key);
  let value = enc.encode($('kv-value').value);
  if (S.kv.binary) {
    value = parseHex($('kv-value').value);
    if (value === null) {
      status(`${keyText}: not saved: its value is not UTF-8, so it is edited as hex (0x, two digits a byte)`, true);
      return;
    }
  }
  // Its key as it is (not as shown), the lease it has kept.
  const keepLease = !!kv.lease && kv.lease !== '0';
  const put = { request_put: { key: kv.key, value: bytesToB64(value), ignore_lease: keepLease } };
  if (await ifUnchanged(kv, put)) {
    status(`saved ${keyText}`);
    const li = Array.from($('kv-list').children).find((x) => x.dataset.b64 === kv.key);
    openKey(kv.key, li);
  }
}

async function deleteKey() {
  const kv = S.kv.selected;
  if (!kv) return;
  if (await ifUnchanged(kv, { request_delete_range: { key: kv.key } })) {
    status(`deleted ${show(kv.key)}`);
    S.kv.selected = null;
    $('kv-detail').classList.add('hidden');
    for (const li of Array.from($('kv-list').children)) if (li.dataset.b64 === kv.key) li.remove();
  }
}

// A new key only: one that exists is left as it is.
async function createKey() {
  const key = $('kv-new-key').value;
  if (!key) return;
  let made = false;
  try {
    const r = await v3('/v3/kv/txn', {
      compare: [{ key: textB64(key), result: 'EQUAL', target: 'CREATE', create_revision: '0' }],
      success: [{ request_put: { key: textB64(key), value: textB64($('kv-new-value').value) } }],
    });
    made = !!r.succeeded;
    status(made ? `created ${key}` : `${key} exists already: open it to edit it`, !made);
  } catch (e) {
    if (!authFailed(e)) status(`${key}: ${e.message}`, true);
  }
  if (made) {
    $('kv-new-key').value = '';
    $('kv-new-value').value = '';
    listKeys(true);
  }
}

// ------------------------------------------------------------------- v2

const v2Url = (path) => '/v2/keys' + encodeURI(path).replace(/[?#]/g, encodeURIComponent);

// A v2 keys API call: its JSON, or an error with etcd's message.
// A 401 (v2 auth on, and these credentials, or none, may not) shows the
// v2 login; a success with credentials hides it.
async function v2(path, method, form, query) {
  const init = { method: method || 'GET', headers: {} };
  if (form) {
    init.body = new URLSearchParams(form);
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  if (S.v2auth) init.headers.Authorization = S.v2auth;
  const r = await fetch(v2Url(path) + (query || (method ? '' : '?sorted=true')), init);
  const body = await r.json().catch(() => null);
  if (r.status === 401) $('v2-login').classList.remove('hidden');
  if (!r.ok || !body || body.errorCode) {
    const msg = body && body.message ? `${body.message} (${body.cause || path})` : `HTTP ${r.status}`;
    throw new ApiError(msg, body && body.errorCode, r.status);
  }
  if (S.v2auth) $('v2-login').classList.add('hidden');
  return body;
}

// v2 has no login call: the credentials are kept and sent with every v2
// request, and the next request tells whether they may.
function v2Login(ev) {
  ev.preventDefault();
  const user = $('v2-user').value;
  S.v2auth = 'Basic ' + bytesToB64(enc.encode(user + ':' + $('v2-password').value));
  $('v2-password').value = '';
  $('v2-whoami').textContent = 'as ' + user;
  openV2($('v2-path').value);
}

async function openV2(path) {
  path = path || '/';
  $('v2-value').textContent = '';
  try {
    const body = await v2(path);
    const node = body.node || {};
    if (!node.dir) {
      S.v2 = { key: node.key, index: node.modifiedIndex };
      $('v2-detail').classList.remove('hidden');
      $('v2-key').textContent = node.key;
      $('v2-edit').value = node.value || '';
      $('v2-value').textContent = `modified index ${node.modifiedIndex}, created index ${node.createdIndex}` +
        (node.ttl ? `, TTL ${node.ttl} s (expires ${node.expiration})` : '');
      return;
    }
    $('v2-path').value = path;
    $('v2-detail').classList.add('hidden');
    const items = [];
    if (path !== '/') {
      const up = path.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/';
      items.push(v2Item(up, true, '..'));
    }
    for (const n of node.nodes || []) items.push(v2Item(n.key, !!n.dir, n.key + (n.dir ? '/' : ` = ${n.value}`)));
    $('v2-list').replaceChildren(...items);
  } catch (e) {
    $('v2-list').replaceChildren();
    if (/HTTP 404/.test(e.message)) $('v2-value').textContent = 'The v2 API is off on this member (--enable-v2).';
    else status(`v2 ${path}: ${e.message}`, true);
  }
}

async function v2Write(path, method, form, what, query) {
  try {
    await v2(path, method, form, query);
    status(`v2 ${what} ${path}`);
    return true;
  } catch (e) {
    status(`v2 ${path}: ${e.message}`, true);
    return false;
  }
}

// Saved and deleted only if unchanged since opened (prevIndex: etcd's
// "Compare failed" otherwise).
async function saveV2() {
  const { key, index } = S.v2;
  if (key && (await v2Write(key, 'PUT', { value: $('v2-edit').value, prevIndex: String(index) }, 'saved'))) openV2(key);
}

async function deleteV2() {
  const { key, index } = S.v2;
  if (key && (await v2Write(key, 'DELETE', null, 'deleted', `?prevIndex=${index}`))) {
    $('v2-detail').classList.add('hidden');
    openV2($('v2-path').value);
  }
}

async function createV2() {
  let key = $('v2-new-key').value;
  if (!key) return;
  if (!key.startsWith('/')) key = '/' + key;
  if (await v2Write(key, 'PUT', { value: $('v2-new-value').value, prevExist: 'false' }, 'created')) {
    $('v2-new-key').value = '';
    $('v2-new-value').value = '';
    openV2($('v2-path').value);
  }
}

function v2Item(key, dir, text) {
  const li = el('li', { 'data-key': key, 'data-dir': String(dir) }, text);
  li.addEventListener('click', () => openV2(key));
  return li;
}

// ---------------------------------------------------------------- watch

// The objects of a newline-delimited JSON stream.
async function* jsonLines(body) {
  const reader = body.getReader();
  const text = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += text.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buf.trim()) yield JSON.parse(buf);
  } finally {
    reader.releaseLock();
  }
}

function startWatch() {
  stopWatch(true);
  S.watch.prefix = $('watch-prefix').value;
  S.watch.rev = 0;
  S.watch.on = true;
  $('watch-events').replaceChildren();
  watchLoop();
}

function stopWatch(quiet) {
  S.watch.on = false;
  if (S.watch.ctl) S.watch.ctl.abort();
  S.watch.ctl = null;
  if (!quiet) $('watch-state').textContent = 'stopped';
}

// Watches until stopped; after a broken stream, resumes from the revision
// after the last event seen.
async function watchLoop() {
  while (S.watch.on) {
    const ctl = new AbortController();
    S.watch.ctl = ctl;
    const req = { ...rangeFor(S.watch.prefix, null) };
    if (S.watch.rev) req.start_revision = String(S.watch.rev + 1);
    try {
      const r = await fetch('/v3/watch', {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({ create_request: req }),
        signal: ctl.signal,
      });
      if (!r.ok) throw new ApiError(await r.text(), null, r.status);
      for await (const msg of jsonLines(r.body)) {
        if (msg.error) throw new ApiError(msg.error.message || JSON.stringify(msg.error));
        const res = msg.result || {};
        if (res.created) $('watch-state').textContent = `watching ${S.watch.prefix || '(every key)'}`;
        if (res.compact_revision) {
          // Resume from the oldest revision still kept.
          S.watch.rev = num(res.compact_revision) - 1;
          break;
        }
        if (res.canceled) throw new ApiError(res.cancel_reason || 'watch canceled');
        for (const ev of res.events || []) showEvent(ev);
      }
    } catch (e) {
      if (!S.watch.on) return;
      if (authFailed(e)) {
        stopWatch();
        return;
      }
      status('watch: ' + e.message, true);
    }
    if (!S.watch.on) return;
    $('watch-state').textContent = 'reconnecting';
    await new Promise((res) => setTimeout(res, 1000));
  }
}

function showEvent(ev) {
  const kv = ev.kv || {};
  const type = ev.type || 'PUT';
  const key = show(kv.key);
  S.watch.rev = Math.max(S.watch.rev, num(kv.mod_revision));
  const text = type === 'DELETE' ? `DELETE ${key}` : `PUT ${key} = ${show(kv.value)}`;
  const ul = $('watch-events');
  ul.prepend(el('li', { 'data-type': type, 'data-key': key, title: `revision ${num(kv.mod_revision)}` }, text));
  while (ul.children.length > WATCH_KEEP) ul.lastChild.remove();
}

// --------------------------------------------------------------- metrics

// Prometheus text: name -> [{labels, value}].
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    }
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: Number(m[4]) });
  }
  return out;
}

const sum = (samples, filter) =>
  (samples || []).filter((s) => !filter || filter(s.labels)).reduce((a, s) => a + s.value, 0);

// The q-quantile (seconds) of the observations between two scrapes of a
// histogram, from its cumulative buckets, as Prometheus' histogram_quantile.
function quantile(q, now, before, filter) {
  const buckets = new Map();
  for (const s of now || []) {
    if (filter && !filter(s.labels)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  for (const s of before || []) {
    if (filter && !filter(s.labels)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) - s.value);
  }
  const les = Array.from(buckets.keys()).sort((a, b) => a - b);
  const total = buckets.get(Infinity) || 0;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const c = buckets.get(le);
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

function record(chart, name, value) {
  const series = (S.metrics.series[chart] = S.metrics.series[chart] || {});
  const points = (series[name] = series[name] || []);
  points.push(value);
  if (points.length > 90) points.shift();
}

async function refreshMetrics() {
  let text;
  try {
    const r = await fetch('/metrics');
    if (!r.ok) throw new Error('HTTP ' + r.status);
    text = await r.text();
  } catch (e) {
    $('charts-note').textContent = '/metrics: ' + e.message;
    return;
  }
  const now = parseMetrics(text);
  const at = Date.now();
  const before = S.metrics.last;
  const dt = (at - S.metrics.at) / 1000;
  S.metrics.last = now;
  S.metrics.at = at;
  if (!before || dt <= 0) return;

  const handled = (m) => sum(now.get('grpc_server_handled_total'), (l) => l.grpc_method === m) -
    sum(before.get('grpc_server_handled_total'), (l) => l.grpc_method === m);
  const kinds = ['Range', 'Put', 'Txn', 'DeleteRange'];
  let others = sum(now.get('grpc_server_handled_total')) - sum(before.get('grpc_server_handled_total'));
  for (const k of kinds) {
    const n = handled(k);
    others -= n;
    record('requests', k, n / dt);
  }
  record('requests', 'other gRPC', Math.max(0, others) / dt);
  const v2 = sum(now.get('etcd_http_received_total')) - sum(before.get('etcd_http_received_total'));
  if (now.has('etcd_http_received_total')) record('requests', 'v2', v2 / dt);

  const ms = (v) => (v === null ? null : v * 1000);
  const lat = now.get('grpc_server_handling_seconds_bucket');
  if (lat) {
    const unary = (l) => l.grpc_type === 'unary';
    record('latency', 'p50', ms(quantile(0.5, lat, before.get('grpc_server_handling_seconds_bucket'), unary)));
    record('latency', 'p99', ms(quantile(0.99, lat, before.get('grpc_server_handling_seconds_bucket'), unary)));
  }
  const notes = [];
  if (!lat) notes.push('request latency needs --metrics extensive');
  const fs = 'etcd_disk_wal_fsync_duration_seconds_bucket';
  record('fsync', 'p50', ms(quantile(0.5, now.get(fs), before.get(fs))));
  record('fsync', 'p99', ms(quantile(0.99, now.get(fs), before.get(fs))));
  const rtt = 'etcd_network_peer_round_trip_time_seconds_bucket';
  const peers = new Set((now.get(rtt) || []).map((s) => s.labels.To));
  let timed = false;
  for (const p of peers) {
    const member = S.members.find((m) => hexId(m.ID).padStart(16, '0') === p.padStart(16, '0'));
    const p99 = ms(quantile(0.99, now.get(rtt), before.get(rtt), (l) => l.To === p));
    timed = timed || p99 !== null;
    record('peer-rtt', member ? member.name : p, p99);
  }
  // The leader times its heartbeats; a follower measures no round trips.
  if (!timed && S.members.length > 1) notes.push('peer round trips are measured by the leader');
  $('charts-note').textContent = notes.join('; ');
  for (const chart of ['requests', 'latency', 'fsync', 'peer-rtt']) drawChart(chart);
}

const COLORS = ['#1f6feb', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#0a7ea4'];
const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawChart(chart) {
  const svg = $('chart-' + chart);
  const series = S.metrics.series[chart] || {};
  const W = 400;
  const H = 160;
  const L = 40;
  const B = 18;
  const names = Object.keys(series);
  const max = Math.max(1e-9, ...names.flatMap((n) => series[n].filter((v) => v !== null)));
  const parts = [
    svgEl('line', { x1: L, y1: 8, x2: L, y2: H - B, class: 'grid' }),
    svgEl('line', { x1: L, y1: H - B, x2: W, y2: H - B, class: 'grid' }),
    svgEl('text', { x: 2, y: 14 }, max >= 100 ? max.toFixed(0) : max.toPrecision(2)),
    svgEl('text', { x: 2, y: H - B }, '0'),
    svgEl('text', { x: L, y: H - 4 }, '3 min ago'),
    svgEl('text', { x: W - 24, y: H - 4 }, 'now'),
  ];
  names.forEach((n, i) => {
    const pts = series[n];
    const color = COLORS[i % COLORS.length];
    const step = (W - L) / 89;
    const x0 = W - step * (pts.length - 1);
    const coords = pts
      .map((v, j) => (v === null ? null : `${(x0 + j * step).toFixed(1)},${(H - B - ((H - B - 8) * v) / max).toFixed(1)}`))
      .filter((c) => c !== null);
    parts.push(svgEl('polyline', { points: coords.join(' '), fill: 'none', stroke: color, 'stroke-width': 1.5 }));
    const last = pts.filter((v) => v !== null).slice(-1)[0];
    parts.push(
      svgEl('text', {
        x: L + 6 + (i % 3) * 118,
        y: 20 + Math.floor(i / 3) * 12,
        fill: color,
        class: 'legend',
        'data-series': n,
        'data-last': last === undefined ? '' : String(last),
      },
        `${n}: ${last === undefined ? '-' : last >= 100 ? last.toFixed(0) : last.toPrecision(3)}`),
    );
  });
  svg.replaceChildren(...parts);
}

// ------------------------------------------------------------------ main

function every(ms, f) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await f();
    } finally {
      busy = false;
    }
  };
  tick();
  return setInterval(tick, ms);
}

async function main() {
  $('endpoint').textContent = location.host;
  $('login').addEventListener('submit', login);
  $('logout').addEventListener('click', () => {
    forget();
    stopWatch();
    probeAuth();
  });
  $('kv-search').addEventListener('click', () => listKeys(true));
  $('kv-prefix').addEventListener('keydown', (e) => e.key === 'Enter' && listKeys(true));
  $('kv-next').addEventListener('click', () => listKeys(false));
  $('kv-save').addEventListener('click', saveKey);
  $('kv-delete').addEventListener('click', deleteKey);
  $('kv-create').addEventListener('click', createKey);
  $('v2-open').addEventListener('click', () => openV2($('v2-path').value));
  $('v2-login').addEventListener('submit', v2Login);
  $('v2-save').addEventListener('click', saveV2);
  $('v2-delete').addEventListener('click', deleteV2);
  $('v2-create').addEventListener('click', createV2);
  $('watch-start').addEventListener('click', startWatch);
  $('watch-stop').addEventListener('click', () => stopWatch());
  drawTimeline();
  await probeAuth();
  every(1000, refreshCluster);
  every(2000, refreshMetrics);
  every(5000, refreshAlarms);
  every(10000, refreshCompaction);
  if (!S.authNeeded || S.token) {
    listKeys(true);
    openV2('/');
  }
}

main();
