#!/usr/bin/env node
// The console page (SPEC section 8) in a real headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core), against the real daemon and
// a real broker with the plugin:
//
//   log in with the admin token from `mosquitto_ctrl tokens init`; create a
//   token in the New Token dialog (name, role from the select, a date and
//   time in the browser's zone, sent as UTC); read it from the once-only
//   view (warning, Copy); log in to the broker with it with mosquitto_sub;
//   see its row, "Valid"; revoke it with the trash button and its
//   confirmation; a token named <img src=x onerror=alert(1)> is shown as
//   text.
//
// Usage: node test/browser/console.test.js   (exits non-zero on a failure)
// Environment: BUILD (default <repo>/build), CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT=FILE saves the overview there (the README's
// is made with SCREENSHOT=docs/console.png), KEEP_TMP=1 keeps the temporary
// folder.
'use strict';

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(process.env.BUILD || path.join(REPO, 'build'));
const PLUGIN = path.join(BUILD, 'mosquitto_tokens.so');
const CONSOLE = path.join(BUILD, 'mosquitto_tokens_console');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT ? path.resolve(process.env.SCREENSHOT) : '';
const MOSQUITTO = '/usr/sbin/mosquitto';
const TOKEN_RE = /mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}/g;
const TIME_ZONE = 'Europe/Berlin';
const XSS_NAME = '<img src=x onerror=alert(1)>';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'console-browser-'));
const home = path.join(tmp, 'home');
fs.mkdirSync(home);
const ctrlEnv = { ...process.env, LD_LIBRARY_PATH: BUILD, HOME: home };
delete ctrlEnv.XDG_CONFIG_HOME;
const started = [];   // child processes to stop at the end

// ---------------------------------------------------------------- helpers

function log(message) {
  process.stdout.write(message + '\n');
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  log(`ok - ${name} (${Date.now() - t0} ms)`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

async function waitFor(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return '';
  }
}

function ctrl(args, port, token) {
  const connection = port ? ['-h', '127.0.0.1', '-p', String(port), '-u', 'admin', '-P', token] : [];
  const done = spawnSync('/usr/bin/mosquitto_ctrl', [...connection, 'tokens', ...args],
    { env: ctrlEnv, encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (done.status !== 0) {
    throw new Error(`mosquitto_ctrl tokens ${args.join(' ')}: exit ${done.status}\n${done.stdout}${done.stderr}`);
  }
  return done.stdout;
}

// CRC-32 (IEEE 802.3, as zlib's), for a well-formed token of our own.
function crc32(text) {
  let crc = 0xFFFFFFFF;
  for (const byte of Buffer.from(text, 'ascii')) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xEDB88320 & -(crc & 1));
  }
  return (crc ^ 0xFFFFFFFF) >>> 0;
}

function onlyToken(text) {
  const found = text.match(TOKEN_RE) || [];
  assert.equal(found.length, 1, `expected one token in:\n${text}`);
  return found[0];
}

function startProcess(command, args, logFile, env) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', out, out], env: env || process.env });
  fs.closeSync(out);
  child.exitInfo = null;
  child.on('exit', (code, signal) => { child.exitInfo = { code, signal }; });
  started.push(child);
  return child;
}

async function stopProcess(child, timeoutMs = 5000) {
  if (child.exitInfo) return child.exitInfo;
  child.kill('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (!child.exitInfo && Date.now() < deadline) await sleep(20);
  if (!child.exitInfo) {
    child.kill('SIGKILL');
    await waitFor('SIGKILL', () => child.exitInfo !== null);
    throw new Error(`${child.spawnfile} did not stop on SIGTERM within ${timeoutMs} ms`);
  }
  return child.exitInfo;
}

// mosquitto_sub / mosquitto_pub with a token as the password (MQTT 5).
function mqttClient(tool, port, name, token, args) {
  return new Promise((resolve) => {
    const child = spawn(`/usr/bin/${tool}`, ['-h', '127.0.0.1', '-p', String(port), '-V', '5',
      '-u', name, '-P', token, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// ---------------------------------------------------------------- broker and console

async function startBroker() {
  const dir = path.join(tmp, 'broker');
  fs.mkdirSync(dir);
  const state = path.join(dir, 'tokens.json');
  const admin = onlyToken(ctrl(['init', state, 'admin']));
  const port = await freePort();
  const acl = path.join(dir, 'broker.acl');
  fs.writeFileSync(acl, '# nothing: token clients get their rights from their role\n');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous false',
    `acl_file ${acl}`,
    'log_dest stderr',
    'log_type all',
    'persistence false',
  ];
  if (process.getuid && process.getuid() === 0) lines.push('user root');
  lines.push(`plugin ${PLUGIN}`, `plugin_opt_state_file ${state}`);
  const conf = path.join(dir, 'broker.conf');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const logFile = path.join(dir, 'broker.log');
  const child = startProcess(MOSQUITTO, ['-c', conf], logFile);
  await waitFor('the broker', async () => {
    if (child.exitInfo) throw new Error(`mosquitto exited:\n${readText(logFile)}`);
    return / running/.test(readText(logFile)) && portOpen(port);
  });
  return { child, port, admin, logFile, log: () => readText(logFile) };
}

async function startConsole(brokerPort) {
  const port = await freePort();
  const logFile = path.join(tmp, 'console.log');
  const child = startProcess(CONSOLE, ['--broker', `127.0.0.1:${brokerPort}`, '--listen', `127.0.0.1:${port}`],
    logFile);
  await waitFor('the console', async () => {
    if (child.exitInfo) throw new Error(`the console exited:\n${readText(logFile)}`);
    return readText(logFile).includes(`http://127.0.0.1:${port}/`) && portOpen(port);
  });
  return { child, port, url: `http://127.0.0.1:${port}/`, logFile, log: () => readText(logFile) };
}

// ---------------------------------------------------------------- the test

async function main() {
  for (const file of [PLUGIN, CONSOLE, CHROMIUM]) {
    if (!fs.existsSync(file)) throw new Error(`missing ${file} (run \`make\`; test/browser/run.sh installs chromium)`);
  }
  const broker = await startBroker();
  const { admin } = broker;
  const ctrlAt = (...args) => ctrl(args, broker.port, admin);
  ctrlAt('createRole', 'devices');
  ctrlAt('addRoleACL', 'devices', 'subscribePattern', 'sensors/#', 'allow');
  ctrlAt('createRole', 'publishers');
  ctrlAt('addRoleACL', 'publishers', 'publishClientSend', 'sensors/#', 'allow');
  const publisher = onlyToken(ctrlAt('create', 'sensor-publisher', 'publishers', '30d'));
  onlyToken(ctrlAt('create', 'ci-bot', 'admin', '90d'));
  onlyToken(ctrlAt('create', 'grafana', 'devices', '365d'));
  const consoleD = await startConsole(broker.port);
  log(`# broker on ${broker.port}, console at ${consoleD.url}, files in ${tmp}`);

  const userDataDir = path.join(tmp, 'chromium-profile');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
    timezoneId: TIME_ZONE,
    locale: 'en-GB',
    viewport: { width: 1360, height: 640 },
  });
  const failures = [];
  try {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: consoleD.url.slice(0, -1) });
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15000);
    const dialogs = [];
    const problems = [];
    page.on('dialog', async (dialog) => {
      dialogs.push({ type: dialog.type(), message: dialog.message() });
      if (dialog.type() === 'confirm') await dialog.accept();
      else await dialog.dismiss();
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // The browser logs the expected 401 of the unknown-token step itself,
      // and the 400 of the refused client id.
      if (message.type() === 'error' && !/status of 40[01] \((Unauthorized|Bad Request)\)/.test(message.text())) {
        problems.push(`console error: ${message.text()}`);
      }
    });
    const requests = [];
    page.on('request', (request) => requests.push(request.url()));

    const rowOf = (name) => page.locator('tr[data-hash]').filter({
      has: page.locator('td.name', { hasText: name }),
    });

    await step('the page loads under its CSP with the login form', async () => {
      const response = await page.goto(consoleD.url);
      assert.equal(response.status(), 200);
      assert.match(response.headers()['content-security-policy'] || '', /default-src 'none'/);
      await page.locator('#login-form').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#console-view').isVisible(), false);
    });

    await step('a token that is not token-shaped is refused in the page', async () => {
      await page.fill('#login-token', 'hunter2');
      await page.click('#login');
      await page.locator('#login-token-error').waitFor({ state: 'visible' });
      assert.match(await page.textContent('#login-token-error'), /mqtk_/);
      assert.equal(await page.locator('#console-view').isVisible(), false);
    });

    await step('an unknown token is refused by the broker (401): back to the login form', async () => {
      const first = `mqtk_${'A'.repeat(43)}`;
      const unknown = first + crc32(first).toString(16).padStart(8, '0');
      await page.fill('#login-token', unknown);
      await page.click('#login');
      await page.locator('#error').waitFor({ state: 'visible' });
      assert.match(await page.textContent('#error'), /refused/);
      await page.locator('#login-form').waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    });

    await step('log in with the admin token', async () => {
      await page.fill('#login-token', admin);
      await page.click('#login');
      await page.locator('#console-view').waitFor({ state: 'visible' });
      await rowOf('grafana').waitFor();
      assert.equal(await page.locator('#error').isVisible(), false);
      const names = await page.locator('tr[data-hash] td.name').allTextContents();
      assert.deepEqual(names.sort(), ['admin', 'ci-bot', 'grafana', 'sensor-publisher']);
      assert.equal(await page.locator('#login-token').inputValue(), '', 'the login field keeps the token');
      // The token is kept for the browser session only.
      assert.equal(await page.evaluate(() => localStorage.length), 0);
      assert.equal(await page.evaluate(() => document.cookie), '');
    });

    let created = null;
    let createdHash = null;
    await step('create a token in the New Token dialog', async () => {
      await page.click('#new-token');
      await page.locator('#token-dialog').waitFor({ state: 'visible' });
      await page.locator('#token-role option[value="devices"]').waitFor({ state: 'attached' });
      const roles = await page.locator('#token-role option:not([disabled])').allTextContents();
      assert.deepEqual(roles, ['admin', 'devices', 'publishers']);
      assert.equal(await page.getAttribute('#token-name', 'maxlength'), '30');
      await page.fill('#token-name', 'sensor-gw');
      await page.selectOption('#token-role', 'devices');
      // 10:30 in Berlin in summer time is 08:30 UTC.
      await page.fill('#token-valid-until', '2031-07-15T10:30');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/tokens') && r.request().method() === 'POST'),
        page.click('#create-token'),
      ]);
      assert.equal(response.status(), 201);
      const sent = JSON.parse(response.request().postData());
      assert.deepEqual(sent, { name: 'sensor-gw', role: 'devices', validUntil: '2031-07-15T08:30:00Z' });
      assert.equal(response.request().headers().authorization, `Bearer ${admin}`);
      assert.ok(!response.request().url().includes('token='), 'the token went into a URL');
    });

    await step('the once-only view shows the token, the warning, and Copy works', async () => {
      await page.locator('#token-result').waitFor({ state: 'visible' });
      created = await page.inputValue('#created-token');
      assert.match(created, /^mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}$/);
      assert.equal(await page.textContent('#created-name'), 'sensor-gw');
      const warning = await page.textContent('#created-warning');
      assert.match(warning, /will not be shown again/i);
      assert.ok(await page.locator('#created-warning').isVisible());
      await page.click('#copy-token');
      await page.waitForFunction(() => document.getElementById('copy-status').textContent === 'Copied');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), created);
    });

    await step('closing the dialog forgets the secret; the new row is there, Valid', async () => {
      await page.click('#close-dialog');
      await page.locator('#token-dialog').waitFor({ state: 'hidden' });
      assert.equal(await page.inputValue('#created-token'), '');
      const html = await page.content();
      assert.ok(!html.includes(created), 'the secret is still in the page');
      const row = rowOf('sensor-gw');
      await row.waitFor();
      assert.equal(await row.locator('td.name').textContent(), 'sensor-gw');
      assert.equal(await row.locator('td.role').textContent(), 'devices');
      assert.equal(await row.locator('td.requested-by').textContent(), 'admin');
      assert.equal(await row.locator('td.status').textContent(), 'Valid');
      assert.equal(await row.locator('td.last-used').textContent(), 'Never');
      assert.equal(await row.locator('td.valid-until time').getAttribute('datetime'), '2031-07-15T08:30:00Z');
      createdHash = await row.getAttribute('data-hash');
      assert.equal(createdHash, require('node:crypto').createHash('sha256').update(created).digest('hex'));
      assert.equal(await page.textContent('#token-count'), '5 tokens');
    });

    await step('the new token logs in to the broker (mosquitto_sub gets a message)', async () => {
      const clientId = `browser-sub-${process.pid}`;
      const subscriber = mqttClient('mosquitto_sub', broker.port, 'sensor-gw', created,
        ['-i', clientId, '-t', 'sensors/x', '-C', '1', '-W', '10', '-v']);
      await waitFor('the subscription', () => broker.log().includes(`Sending SUBACK to ${clientId}`));
      const published = await mqttClient('mosquitto_pub', broker.port, 'sensor-publisher', publisher,
        ['-t', 'sensors/x', '-m', '21.5', '-q', '1']);
      assert.equal(published.code, 0, published.stderr);
      const received = await subscriber;
      assert.equal(received.code, 0, received.stderr);
      assert.equal(received.stdout, 'sensors/x 21.5\n');
    });

    await step('Refresh shows when it was last used', async () => {
      await page.click('#refresh');
      await page.waitForFunction(() => {
        const row = [...document.querySelectorAll('tr[data-hash] td.name')].find((td) => td.textContent === 'sensor-gw');
        return row && row.parentElement.querySelector('td.last-used').textContent !== 'Never';
      });
    });

    if (SCREENSHOT) {
      await step(`screenshot of the overview in ${path.relative(REPO, SCREENSHOT)}`, async () => {
        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await page.mouse.move(0, 0);
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
      });
    }

    await step('revoke it with the trash button and its confirmation', async () => {
      const before = dialogs.length;
      const button = page.getByRole('button', { name: 'Revoke sensor-gw', exact: true });
      assert.equal(await button.count(), 1);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'DELETE'),
        button.click(),
      ]);
      assert.equal(response.status(), 200);
      assert.ok(response.url().endsWith(`/api/tokens/${createdHash}`), response.url());
      assert.equal(dialogs.length, before + 1);
      assert.equal(dialogs[before].type, 'confirm');
      assert.match(dialogs[before].message, /sensor-gw/);
      await rowOf('sensor-gw').waitFor({ state: 'detached' });
      await page.waitForFunction(() => document.getElementById('token-count').textContent === '4 tokens');
      assert.equal(await page.locator('#error').isVisible(), false);
      const refused = await mqttClient('mosquitto_sub', broker.port, 'sensor-gw', created,
        ['-t', 'sensors/x', '-C', '1', '-W', '3']);
      assert.notEqual(refused.code, 0, 'the revoked token still logs in');
      assert.match(broker.log(), /unknown token/);
    });

    await step('dismissing the confirmation revokes nothing', async () => {
      page.removeAllListeners('dialog');
      page.on('dialog', async (dialog) => {
        dialogs.push({ type: dialog.type(), message: dialog.message() });
        await dialog.dismiss();
      });
      await page.getByRole('button', { name: 'Revoke grafana', exact: true }).click();
      await sleep(500);
      assert.equal(await rowOf('grafana').count(), 1);
      assert.equal(dialogs[dialogs.length - 1].type, 'confirm');
      page.removeAllListeners('dialog');
      page.on('dialog', async (dialog) => {
        dialogs.push({ type: dialog.type(), message: dialog.message() });
        if (dialog.type() === 'confirm') await dialog.accept();
        else await dialog.dismiss();
      });
    });

    await step('a token named <img src=x onerror=alert(1)> is shown as text', async () => {
      await page.click('#new-token');
      await page.locator('#token-role option[value="devices"]').waitFor({ state: 'attached' });
      await page.fill('#token-name', XSS_NAME);
      await page.selectOption('#token-role', 'devices');
      await page.fill('#token-valid-until', '2031-01-01T12:00');
      await page.click('#create-token');
      await page.locator('#token-result').waitFor({ state: 'visible' });
      assert.equal(await page.textContent('#created-name'), XSS_NAME);
      await page.click('#close-dialog');
      const row = page.locator('tr[data-hash]').filter({
        has: page.locator('td.name', { hasText: XSS_NAME }),
      });
      await row.waitFor();
      assert.equal(await row.locator('td.name').evaluate((td) => td.textContent), XSS_NAME);
      assert.equal(await row.locator('td.name').evaluate((td) => td.children.length), 0);
      assert.equal(await row.locator('.revoke').getAttribute('aria-label'), `Revoke ${XSS_NAME}`);
      await sleep(500);
      assert.equal(await page.locator('#tokens-table img').count(), 0);
      assert.equal(await page.locator('img').count(), 0);
      assert.deepEqual(dialogs.filter((d) => d.type !== 'confirm'), [], 'a dialog was opened');
      assert.equal(await page.evaluate(() => window.__xss === undefined), true);
      assert.ok(!requests.some((url) => /\/x$/.test(url)), 'the browser fetched the <img> source');
    });

    await step('a token bound to a client id: the field, the plugin\'s answer at it, the column', async () => {
      await page.click('#new-token');
      await page.locator('#token-role option[value="devices"]').waitFor({ state: 'attached' });
      await page.fill('#token-name', 'cam-7');
      await page.selectOption('#token-role', 'devices');
      await page.fill('#token-valid-until', '2031-01-01T12:00');
      // The plugin judges the client id; its answer is shown at the field.
      await page.fill('#token-client-id', 'site/cam-7');
      await page.click('#create-token');
      await page.locator('#token-client-id-error').waitFor({ state: 'visible' });
      assert.match(await page.textContent('#token-client-id-error'), /'clientId'.*'\+', '#' or '\/'/);
      assert.equal(await page.getAttribute('#token-client-id', 'aria-invalid'), 'true');
      await page.fill('#token-client-id', 'cam-7-dev');
      assert.equal(await page.locator('#token-client-id-error').isVisible(), false);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/tokens') && r.request().method() === 'POST'),
        page.click('#create-token'),
      ]);
      assert.equal(response.status(), 201);
      assert.deepEqual(JSON.parse(response.request().postData()),
        { name: 'cam-7', role: 'devices', validUntil: '2031-01-01T11:00:00Z', clientId: 'cam-7-dev' });
      await page.locator('#token-result').waitFor({ state: 'visible' });
      const secret = await page.inputValue('#created-token');
      await page.click('#close-dialog');
      const row = rowOf('cam-7');
      await row.waitFor();
      assert.equal(await row.locator('td.client-id').textContent(), 'cam-7-dev');
      assert.equal(await rowOf('grafana').locator('td.client-id').textContent(), 'Any');
      assert.ok(await rowOf('grafana').locator('td.client-id').evaluate((td) => td.classList.contains('any')));
      // It logs in with that client id only.
      const wrong = await mqttClient('mosquitto_sub', broker.port, 'cam-7', secret,
        ['-i', 'cam-8-dev', '-t', 'sensors/x', '-C', '1', '-W', '3']);
      assert.notEqual(wrong.code, 0, 'the bound token logged in with another client id');
      assert.match(broker.log(), /client cam-8-dev: client id not allowed for token cam-7/);
    });

    await step('no script error, no CSP violation, no request elsewhere', async () => {
      assert.deepEqual(problems, []);
      const origin = consoleD.url.slice(0, -1);
      const elsewhere = requests.filter((url) => !url.startsWith(origin + '/') && !url.startsWith('data:'));
      assert.deepEqual(elsewhere, []);
    });
  } catch (error) {
    failures.push(error);
    try {
      const page = context.pages()[0];
      if (page) {
        const shot = path.join(tmp, 'failure.png');
        await page.screenshot({ path: shot, fullPage: true });
        log(`# failure screenshot: ${shot}`);
      }
    } catch (e) {
      // the browser may be gone
    }
  } finally {
    await context.close().catch(() => {});
  }

  const consoleExit = await stopProcess(consoleD.child);
  const consoleOutput = consoleD.log();
  if (failures.length === 0) {
    await step('the console stops on SIGTERM and wrote no token', async () => {
      assert.deepEqual(consoleExit, { code: 0, signal: null });
      assert.deepEqual(consoleOutput.match(TOKEN_RE), null, consoleOutput);
    });
  }
  await stopProcess(broker.child);
  if (failures.length) {
    log(`# broker log (end):\n${broker.log().slice(-3000)}`);
    log(`# console output:\n${consoleOutput}`);
    throw failures[0];
  }
}

main().then(() => {
  log('# all passed');
  if (!process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}, (error) => {
  log(`not ok - ${error && error.stack ? error.stack : error}`);
  for (const child of started) {
    if (!child.exitInfo && child.exitCode === null) child.kill('SIGKILL');
  }
  log(`# files kept in ${tmp}`);
  process.exit(1);
});
