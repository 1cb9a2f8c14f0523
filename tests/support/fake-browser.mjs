#!/usr/bin/env node
// A scriptable stand-in for the system browser in OAuth tests (no dependencies; Node >= 18).
//
//   fake-browser.mjs [--wait] [--jar FILE] [--log FILE] URL
//
// Opens URL the way a browser tab would: GET, follow 301/302/303/307/308 (relative or absolute
// Location), keep cookies per host (name/path/expiry honoured, ports shared as browsers do), and
// submit auto-submitting HTML forms (<form method=post> plus a script or onload calling submit(),
// e.g. oidc-provider's form_post and logout-confirm pages). Stops at the first response that is
// neither a redirect nor an auto-submitting form.
//
// Like xdg-open, it returns at once by default: it re-launches itself detached (own session,
// stdio not inherited) and exits 0, so a CLI that spawns it and does not wait never blocks on its
// pipes. --wait (or FAKE_BROWSER_WAIT=1) runs in the foreground instead: exit 0 when a final page
// was reached (whatever its status), 1 on a network error, timeout or redirect loop, 2 on usage.
//
// Environment (flags win):
//   FAKE_BROWSER_JAR   cookie jar file (JSON), read at start and rewritten after every hop;
//                      unset: in-memory, so every run is a fresh profile
//   FAKE_BROWSER_LOG   append the hop log here; unset: stderr (discarded when detached)
//   FAKE_BROWSER_WAIT  1: foreground, as --wait
//
// Log lines (values of code, state, ticket and token-like query parameters are redacted):
//   fake-browser: GET http://127.0.0.1:7465/api/v1/connections/1/oauth?ticket=***
//   fake-browser: -> 302 http://127.0.0.1:40123/auth?...&state=***
//   fake-browser: POST http://127.0.0.1:40123/session/end/confirm (form: xsrf, logout)
//   fake-browser: done status=200 url=http://127.0.0.1:7465/... exit=0
// The `done` line is always last; tests poll the log for it after a detached run.
//
// The CLI launches the opener with a minimal environment (OAUTH.md item 6), so point $BROWSER at a
// wrapper that sets these variables, e.g.:
//   #!/bin/sh
//   FAKE_BROWSER_JAR=/tmp/t/jar.json FAKE_BROWSER_LOG=/tmp/t/browser.log exec node /path/fake-browser.mjs "$@"
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const k_max_hops = 30;
const k_request_timeout_ms = 10000;
const k_max_body = 1024 * 1024;
const k_redacted_params = new Set(['code', 'state', 'ticket', 'token', 'access_token', 'refresh_token',
  'id_token', 'code_verifier', 'client_secret', 'xsrf']);

// ---- arguments ----

function usage(message) {
  process.stderr.write(`fake-browser: ${message}\nusage: fake-browser.mjs [--wait] [--jar FILE] [--log FILE] URL\n`);
  process.exit(2);
}

const options = {
  wait: process.env.FAKE_BROWSER_WAIT === '1',
  jar: process.env.FAKE_BROWSER_JAR || null,
  log: process.env.FAKE_BROWSER_LOG || null,
  url: null,
};
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 1) {
    const a = args[i];
    if (a === '--wait') options.wait = true;
    else if (a === '--jar' || a === '--log') {
      if (i + 1 >= args.length) usage(`${a} needs a file`);
      options[a.slice(2)] = args[i += 1];
    } else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (options.url === null) options.url = a;
    else usage('exactly one URL expected');
  }
  if (options.url === null) usage('missing URL');
  try {
    const u = new URL(options.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') usage(`not an http(s) URL: ${u.protocol}`);
  } catch {
    usage('invalid URL');
  }
}

// ---- detaching ----

if (!options.wait) {
  const childArgs = [fileURLToPath(import.meta.url), '--wait'];
  if (options.jar) childArgs.push('--jar', path.resolve(options.jar));
  if (options.log) childArgs.push('--log', path.resolve(options.log));
  childArgs.push(options.url);
  let errFd = 'ignore';
  if (options.log) {
    try { errFd = fs.openSync(options.log, 'a'); } catch { errFd = 'ignore'; }
  }
  const child = spawn(process.execPath, childArgs, {
    detached: true, stdio: ['ignore', 'ignore', errFd], env: process.env,
  });
  child.unref();
  process.exit(0);
}

// ---- logging ----

function redact_url(text) {
  try {
    const u = new URL(text);
    const out = [];
    for (const [k, v] of u.searchParams) {
      out.push(`${encodeURIComponent(k)}=${k_redacted_params.has(k) ? '***' : encodeURIComponent(v)}`);
    }
    u.search = out.length ? `?${out.join('&')}` : '';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function log(line) {
  const text = `fake-browser: ${line}\n`;
  if (options.log) {
    try { fs.appendFileSync(options.log, text); return; } catch { /* fall back to stderr */ }
  }
  process.stderr.write(text);
}

// ---- cookie jar: { host: [{ name, value, path, expires (ms|null), secure }] } ----

let jar = {};
if (options.jar && fs.existsSync(options.jar)) {
  try {
    jar = JSON.parse(fs.readFileSync(options.jar, 'utf8'));
  } catch {
    log(`ignoring unreadable jar ${options.jar}`);
    jar = {};
  }
}

function save_jar() {
  if (!options.jar) return;
  const tmp = `${options.jar}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(jar, null, 1), { mode: 0o600 });
  fs.renameSync(tmp, options.jar);
}

function default_path(u) {
  const p = u.pathname;
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function path_matches(cookiePath, requestPath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function store_cookies(u, setCookies) {
  const host = u.hostname;
  const list = (jar[host] ??= []);
  for (const header of setCookies) {
    const [pair, ...attrs] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const cookie = {
      name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(),
      path: default_path(u), expires: null, secure: false,
    };
    let maxAge = null;
    for (const attr of attrs) {
      const [rawKey, ...rest] = attr.split('=');
      const key = rawKey.trim().toLowerCase();
      const val = rest.join('=').trim();
      if (key === 'path' && val.startsWith('/')) cookie.path = val;
      else if (key === 'expires') {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) cookie.expires = t;
      } else if (key === 'max-age' && /^-?\d+$/.test(val)) maxAge = Number(val);
      else if (key === 'secure') cookie.secure = true;
    }
    if (maxAge !== null) cookie.expires = Date.now() + maxAge * 1000;  // Max-Age beats Expires
    const idx = list.findIndex((c) => c.name === cookie.name && c.path === cookie.path);
    if (idx >= 0) list.splice(idx, 1);
    if (cookie.expires === null || cookie.expires > Date.now()) list.push(cookie);
  }
}

function cookie_header(u) {
  const list = jar[u.hostname];
  if (!list) return null;
  const now = Date.now();
  jar[u.hostname] = list.filter((c) => c.expires === null || c.expires > now);
  const send = jar[u.hostname]
    .filter((c) => path_matches(c.path, u.pathname) && (!c.secure || u.protocol === 'https:'))
    .sort((a, b) => b.path.length - a.path.length);
  return send.length ? send.map((c) => `${c.name}=${c.value}`).join('; ') : null;
}

// ---- HTML: auto-submitting forms ----

function decode_entities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_m, e) => {
    const l = e.toLowerCase();
    if (l === 'amp') return '&';
    if (l === 'lt') return '<';
    if (l === 'gt') return '>';
    if (l === 'quot') return '"';
    if (l === 'apos' || l === '#39') return "'";
    if (l.startsWith('#x')) return String.fromCodePoint(parseInt(l.slice(2), 16));
    return String.fromCodePoint(parseInt(l.slice(1), 10));
  });
}

function attributes(tag) {
  const out = {};
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  const inner = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner)) !== null) {
    out[m[1].toLowerCase()] = decode_entities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

// Returns { action, method, fields } for a page that submits its first form by itself, else null.
function auto_submit_form(html, baseUrl) {
  const autoSubmits = /\.submit\s*\(\s*\)/.test(html) || /<body[^>]*\sonload\s*=/i.test(html);
  if (!autoSubmits) return null;
  const formMatch = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!formMatch) return null;
  const formTag = /<form\b[^>]*>/i.exec(formMatch[0])[0];
  const attrs = attributes(formTag);
  const method = (attrs.method ?? 'get').toUpperCase();
  const fields = [];
  for (const input of formMatch[1].match(/<input\b[^>]*>/gi) ?? []) {
    const a = attributes(input);
    if (!a.name || (a.type && ['submit', 'button', 'image', 'reset'].includes(a.type.toLowerCase()))) continue;
    fields.push([a.name, a.value ?? '']);
  }
  const action = new URL(attrs.action || baseUrl, baseUrl);
  return { action, method: method === 'POST' ? 'POST' : 'GET', fields };
}

// ---- HTTP ----

function request(method, u, body, contentType) {
  return new Promise((resolve, reject) => {
    const headers = {
      'user-agent': 'alumia-fake-browser/1',
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
    };
    const cookies = cookie_header(u);
    if (cookies) headers.cookie = cookies;
    if (body !== null) {
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.byteLength(body);
    }
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(u, { method, headers, timeout: k_request_timeout_ms }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (size <= k_max_body) chunks.push(c);
      });
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${k_request_timeout_ms} ms`)));
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

async function browse(startUrl) {
  let method = 'GET';
  let u = new URL(startUrl);
  let body = null;
  let contentType = null;
  for (let hop = 0; hop < k_max_hops; hop += 1) {
    const formNote = body !== null && contentType === 'application/x-www-form-urlencoded'
      ? ` (form: ${[...new URLSearchParams(body).keys()].join(', ')})` : '';
    log(`${method} ${redact_url(u.toString())}${formNote}`);
    const res = await request(method, u, body, contentType);
    const setCookie = res.headers['set-cookie'] ?? [];
    store_cookies(u, Array.isArray(setCookie) ? setCookie : [setCookie]);
    save_jar();
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(res.status) && location) {
      const next = new URL(location, u);
      log(`-> ${res.status} ${redact_url(next.toString())}`);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = null;
        contentType = null;
      }
      u = next;
      continue;
    }
    const type = String(res.headers['content-type'] ?? '');
    const form = type.includes('html') ? auto_submit_form(res.body, u) : null;
    if (form) {
      log(`-> ${res.status} auto-submitting form`);
      if (form.method === 'POST') {
        method = 'POST';
        body = new URLSearchParams(form.fields).toString();
        contentType = 'application/x-www-form-urlencoded';
        u = form.action;
      } else {
        method = 'GET';
        body = null;
        contentType = null;
        u = form.action;
        u.search = new URLSearchParams(form.fields).toString();
      }
      continue;
    }
    return { status: res.status, url: u };
  }
  throw new Error(`more than ${k_max_hops} hops`);
}

try {
  const { status, url } = await browse(options.url);
  log(`done status=${status} url=${redact_url(url.toString())} exit=0`);
  process.exit(0);
} catch (err) {
  log(`error: ${err?.message ?? err}`);
  log('done status=0 exit=1');
  process.exit(1);
}
