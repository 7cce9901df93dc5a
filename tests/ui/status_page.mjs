// The status page in headless Chromium (Debian's, driven by playwright-core): sign-in by
// keyboard, no lab data before it, a machine's change on the open page within 2 s, its
// timeline and kernel log, phone layout, sign-out, and no console errors on the way.
// Run by tests/integration/test_status_page.py, which starts bootd and gives:
//   BOOTD_URL, BOOTD_TOKEN, BOOTD_LOG_PORT, BOOT_MAC (a machine to boot during the test),
//   LOG_SOURCE (the address the kernel log comes from), SECRET_TEXTS (JSON list of lab
//   strings that must not show before sign-in), OUT_DIR (screenshots), CHROMIUM.
import { createRequire } from 'node:module';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const env = process.env;
const URL_ = env.BOOTD_URL;
const TOKEN = env.BOOTD_TOKEN;
const SECRETS = JSON.parse(env.SECRET_TEXTS || '[]');
const results = {};

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

// an /ipxe request as iPXE would make it, from the machine's own address
function boot(mac, source) {
  return new Promise((resolve, reject) => {
    const u = new URL(`/ipxe?mac=${mac}&arch=x86_64&platform=efi`, URL_);
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search,
      localAddress: source }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
  });
}

function sendKernelLog(lines) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: Number(env.BOOTD_LOG_PORT),
      localAddress: env.LOG_SOURCE }, () => {
      for (const l of lines) s.write(JSON.stringify({ msg: l, talos_level: 'info' }) + '\n');
      s.end(resolve);
    });
    s.on('error', reject);
  });
}

async function newPage(browser, opts, errors, phase) {
  const ctx = await browser.newContext(opts);
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${phase.name}: console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${phase.name}: page error: ${e.message}`));
  return { ctx, page };
}

async function signInByKeyboard(page, token) {
  // the token field has focus on arrival; Tab from there goes round to the skip link
  check(await page.evaluate(() => document.activeElement.id) === 'token', 'token field focused on arrival');
  const order = [];
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className
      || document.activeElement.tagName));
  }
  check(order.includes('skip'), 'Tab reaches the skip link: ' + order.join(', '));
  for (let i = 0; i < 5 && await page.evaluate(() => document.activeElement.id) !== 'token'; i++)
    await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.id) === 'token', 'Tab returns to the token field');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
}

async function bodyText(page) {
  return page.evaluate(() => document.body.innerText);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  const phase = { name: 'login' };
  try {
    const { page } = await newPage(browser, { viewport: { width: 1280, height: 900 } }, errors, phase);

    // 1. nothing of the lab without a token: the page, and what scripts could ask for
    await page.goto(URL_ + '/');
    await page.waitForSelector('#login-form');
    check(await page.isHidden('#dash'), 'dashboard hidden before sign-in');
    const before = await bodyText(page);
    for (const s of SECRETS) check(!before.includes(s), `"${s}" visible before sign-in`);
    const html = await page.content();
    for (const s of SECRETS) check(!html.includes(s), `"${s}" in the page before sign-in`);

    // 2. a wrong token is refused and says so (the 401 it gets is expected)
    phase.name = 'wrong-token';
    await page.fill('#token', 'not-the-token-0000000000');
    await page.press('#token', 'Enter');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
    check(await page.isHidden('#dash'), 'dashboard stays hidden after a wrong token');
    await page.fill('#token', '');
    errors.length = 0;

    // 3. sign in with the keyboard only
    phase.name = 'dashboard';
    await page.reload();
    await page.waitForSelector('#login-form');
    await signInByKeyboard(page, TOKEN);
    await page.waitForSelector('#dash:not([hidden])');
    await page.waitForSelector('#machines tbody tr[data-mac]');
    const rows = await page.$$eval('#machines tbody tr[data-mac]', (t) => t.map((r) => r.dataset.mac));
    results.rows = rows.length;
    check(rows.length >= 3, `machines listed: ${rows.length}`);
    const text = await bodyText(page);
    check(/Never powered on/.test(text), 'machines never powered on are grouped');

    // 4. keyboard: Tab to the first machine, Enter opens its timeline, Escape closes it
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => !!document.activeElement.dataset && !!document.activeElement.dataset.mac);
    }
    check(found, 'a machine is reachable with Tab');
    const mac = await page.evaluate(() => document.activeElement.dataset.mac);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#machine:not([hidden])');
    check(await page.evaluate(() => document.activeElement.id) === 'machine-title', 'focus moves to the machine');
    await page.waitForFunction(() => document.querySelectorAll('#timeline li').length > 0);
    await page.keyboard.press('Escape');
    check(await page.isHidden('#machine'), 'Escape closes the machine');
    check(await page.evaluate(() => document.activeElement.dataset.mac) === mac, 'focus returns to its row');

    // 5. live: a machine boots while the page is open
    const target = env.BOOT_MAC;
    const stateOf = () => page.$eval(`#machines tr[data-mac="${target}"] .badge`, (b) => b.textContent);
    const was = await stateOf();
    const t0 = Date.now();
    check(await boot(target, env.BOOT_SOURCE || '127.0.0.1') === 200, 'boot request answered');
    await page.waitForFunction(([m, w]) => {
      const b = document.querySelector(`#machines tr[data-mac="${m}"] .badge`);
      return b && b.textContent !== w;
    }, [target, was], { timeout: 2000 });
    results.state_change_ms = Date.now() - t0;
    results.state_change = `${was} -> ${await stateOf()}`;

    // 6. the kernel log of an open machine follows too
    await page.click(`#machines button[data-mac="${env.LOG_MAC}"]`);
    await page.waitForSelector('#machine:not([hidden])');
    const t1 = Date.now();
    await sendKernelLog(['[talos] task startAllServices (1/1): waiting for 6 services',
      '[talos] service[apid](Running): Health check successful']);
    await page.waitForFunction(() => document.getElementById('klog').textContent.includes('Health check successful'),
      null, { timeout: 2000 });
    results.kernel_log_ms = Date.now() - t1;

    await page.screenshot({ path: path.join(env.OUT_DIR, 'status-desktop.png'), fullPage: true });

    // 7. a phone: one column, nothing wider than the screen
    phase.name = 'phone';
    const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
      isMobile: true, hasTouch: true }, errors, phase);
    await phone.page.goto(URL_ + '/');
    await phone.page.fill('#token', TOKEN);
    await phone.page.press('#token', 'Enter');
    await phone.page.waitForSelector('#machines tbody tr[data-mac]');
    await phone.page.click(`#machines button[data-mac="${env.LOG_MAC}"]`);
    await phone.page.waitForFunction(() => document.getElementById('klog').textContent.includes('Health check'));
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `phone page is ${overflow}px wider than the screen`);
    await phone.page.evaluate(() => window.scrollTo(0, 0));
    await phone.page.screenshot({ path: path.join(env.OUT_DIR, 'status-phone.png'), fullPage: true });

    // 8. signing out leaves nothing of the lab on the page
    phase.name = 'sign-out';
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    const after = await bodyText(page);
    for (const s of SECRETS) check(!after.includes(s), `"${s}" still on the page after sign-out`);
    check(await page.evaluate(() => sessionStorage.length) === 0, 'token forgotten');

    check(errors.length === 0, 'console errors:\n' + errors.join('\n'));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(results));
}

main().catch((e) => {
  console.error('status page test: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
