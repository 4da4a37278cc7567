// The Laravel walk: a small app on Debian's php-laravel-framework through
// `corral site add DOMAIN --template laravel`. Run by browser_sites.rs.
'use strict';
const { walk, env, expect, Skip } = require('./walk');

const NOTE = `note ${env('WALK_NOTE')}`;

walk([
  ['laravel-route-view', async ({ page, base }) => {
    const r = await page.goto(`${base}/`);
    expect(r.status() === 200, `status ${r.status()}`);
    const h = await page.textContent('#greeting');
    expect(h === 'Hello from corral', `greeting "${h}"`);
    return await page.textContent('#versions');
  }],
  ['laravel-route-link', async ({ page, base }) => {
    await Promise.all([page.waitForURL(`${base}/notes`), page.click('#notes')]);
    const s = await page.textContent('#saved');
    expect(s === '(nothing saved)', `before saving: "${s}"`);
  }],
  ['laravel-storage-write', async ({ page, base }) => {
    await page.fill('#text', NOTE);
    await Promise.all([page.waitForNavigation(), page.click("#save")]);
    return 'posted';
  }],
  ['laravel-storage-read-back', async ({ page, base }) => {
    const r = await page.goto(`${base}/notes`);
    expect(r.status() === 200, `status ${r.status()}`);
    const s = await page.textContent('#saved');
    expect(s === NOTE, `read back "${s}"`);
  }],
  ['laravel-private-dirs-hidden', async ({ page, base }) => {
    // The web root is public/: the app's storage, routes and config are
    // not reachable by URL, however the path is spelt.
    const seen = [];
    for (const p of ['/storage/app/notes/latest.txt', '/../storage/app/notes/latest.txt',
      '/%2e%2e/storage/app/notes/latest.txt', '/routes/web.php', '/config/app.php', '/.env']) {
      const r = await page.evaluate(async (u) => {
        const res = await fetch(u, { cache: 'no-store' });
        return { status: res.status, body: await res.text() };
      }, `${base}${p}`);
      expect(!r.body.includes(NOTE) && !r.body.includes('Route::'), `${p} (${r.status}) shows the app's files`);
      expect(r.status === 404 || r.status === 403, `${p}: ${r.status}`);
      seen.push(`${p} ${r.status}`);
    }
    return seen.join(', ');
  }],
  ['laravel-queued-job', async () => {
    throw new Skip('the laravel template offers no queue worker (templates/laravel.pool has none)');
  }],
]).catch((e) => {
  process.stdout.write(`STEP laravel-browser: FAILED ${e.message}\n`);
  process.exitCode = 1;
});
