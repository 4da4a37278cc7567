// Shared by the walks: Chromium through playwright-core (Debian's
// /usr/bin/chromium, a fresh profile), the site's name mapped to loopback,
// and steps that print `STEP <name>: ok|FAILED <why>|SKIPPED <why>`.
'use strict';
const { chromium } = require('playwright-core');
const crypto = require('crypto');
const fs = require('fs');

// Every wait is bounded; a step that hangs fails with its name.
const STEP_TIMEOUT_MS = 90000;
const ACTION_TIMEOUT_MS = 30000;

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`walk: ${name} is not set`);
  return v;
}

function report(name, result) {
  const line = String(result).replace(/\s+/g, ' ').trim();
  process.stdout.write(`STEP ${name}: ${line}\n`);
}

class Skip extends Error {}

// Runs the steps in order; after a failure the rest are FAILED as
// "not reached" (each one still listed), and the browser is closed.
async function walk(steps) {
  const host = env('WALK_HOST');
  const addr = env('WALK_ADDR');
  const profile = env('WALK_PROFILE');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: 60000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--host-resolver-rules=MAP ${host} ${addr}`,
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(ACTION_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
  const ctx = { page, context, base: `http://${host}`, host, state: {} };
  let failed = null;
  try {
    for (const [name, fn] of steps) {
      if (failed) {
        report(name, `FAILED not reached (${failed} failed)`);
        continue;
      }
      try {
        const detail = await withTimeout(fn(ctx), STEP_TIMEOUT_MS, name);
        report(name, `ok${detail ? ' ' + detail : ''}`);
      } catch (e) {
        if (e instanceof Skip) {
          report(name, `SKIPPED ${e.message}`);
        } else {
          failed = name;
          const seen = await page.evaluate(() => document.body ? document.body.innerText : '').catch(() => '');
          report(name, `FAILED ${firstLine(e)} | page ${page.url()}: ${seen.replace(/\s+/g, ' ').slice(0, 400)}`);
          await page.screenshot({ path: `${profile}/../${name}.png` }).catch(() => {});
        }
      }
    }
  } finally {
    await context.close().catch(() => {});
  }
}

function firstLine(e) {
  return String((e && e.message) || e).split('\n').slice(0, 3).join(' | ');
}

function withTimeout(promise, ms, name) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${name}: no result in ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

// GET `url` from inside the page (Chromium's own network stack, same
// origin, logged-in cookies): status, type and the body's sha256. The body
// comes back base64 (crypto.subtle exists only on secure origins).
async function fetchInPage(page, url) {
  const r = await page.evaluate(async (u) => {
    const res = await fetch(u, { credentials: 'same-origin', cache: 'no-store' });
    const bytes = new Uint8Array(await res.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return { status: res.status, type: res.headers.get('content-type'), b64: btoa(bin) };
  }, url);
  const body = Buffer.from(r.b64, 'base64');
  return { status: r.status, type: r.type, length: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') };
}

function sha256File(path) {
  return crypto.createHash('sha256').update(fs.readFileSync(path)).digest('hex');
}

function expect(cond, why) {
  if (!cond) throw new Error(why);
}

module.exports = { walk, env, expect, fetchInPage, sha256File, Skip };
