import { type Domain, openStore } from '@apigate/gateway';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli.js';
import { BIN, cleanEnv, cli, DEV_PROVIDERS, serve, tempDir } from './helpers.js';

const GROUPS = ['users', 'plans', 'keys', 'routes', 'usage', 'admin'];
const COMMANDS = [
  'users create',
  'users list',
  'users get',
  'users suspend',
  'users activate',
  'users delete',
  'plans create',
  'plans list',
  'plans update',
  'plans set-default',
  'plans delete',
  'keys create',
  'keys list',
  'keys revoke',
  'routes add',
  'routes list',
  'routes update',
  'routes remove',
  'usage show',
  'admin token create',
  'admin token list',
  'admin token revoke',
];

/** A fresh data folder and the environment that points the CLI at it. */
function fresh(name: string) {
  const dataDir = tempDir(name);
  return { dataDir, env: cleanEnv({ APIGATE_DATA_DIR: dataDir }) };
}

/** Writes through the store in-process: setup for a test about another command, without spawning the CLI. */
async function seed<T>(dataDir: string, fn: (d: Domain) => Promise<T>): Promise<T> {
  const store = await openStore({ dataDir });
  try {
    return await fn(store.domain);
  } finally {
    await store.close();
  }
}

/** Runs `fn` over `items`, `size` at a time: CLI processes side by side without swamping a 2-core machine. */
async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>, size = 3): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/** Runs a command with --json and parses its answer; fails the test with stderr otherwise. */
async function json(env: NodeJS.ProcessEnv, args: string[]) {
  const r = await cli([...args, '--json'], env);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

/** A failing command: its exit code and its single stderr line (commander adds a usage hint to its own errors). */
async function failure(env: NodeJS.ProcessEnv, args: string[]) {
  const r = await cli(args, env);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l !== '(run with --help for usage)');
  expect(lines, r.stderr).toHaveLength(1);
  return { code: r.code, line: lines[0]! };
}

// Each test has its own data folder, so they run side by side (each CLI call is a process start).
// Generous timeout: dozens of process starts on a loaded 2-core machine.
describe.concurrent('apigate users|plans|keys|routes|usage|admin', { timeout: 240_000 }, () => {
  it('has --help and --json on every command', async () => {
    // Every subcommand, walked from the program the binary runs (22 process starts would take most of a minute).
    const program = buildProgram();
    const leaves: string[] = [];
    const walk = (cmd: typeof program, path: string[]) => {
      for (const sub of cmd.commands) {
        const p = [...path, sub.name()];
        if (sub.commands.length) walk(sub, p);
        else {
          leaves.push(p.join(' '));
          expect(
            sub.options.map((o) => o.long),
            p.join(' '),
          ).toContain('--json');
          expect(sub.description(), p.join(' ')).not.toBe('');
        }
      }
    };
    for (const group of GROUPS) walk(program.commands.find((c) => c.name() === group)!, [group]);
    expect(leaves).toEqual(expect.arrayContaining(COMMANDS)); // other work may add commands to these groups (usage export)

    // And the real binary answers --help for each group and a nested command.
    const { env } = fresh('help');
    const results = await inBatches([...GROUPS.map((g) => [g]), ['admin', 'token', 'create']], (args) => cli([...args, '--help'], env));
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Usage: apigate /);
    }
    expect(results.at(-1)!.stdout).toContain('--json');
  });

  it('manages plans, users and keys; prints the key once and never again', async () => {
    const { env, dataDir } = fresh('plans-users-keys');
    const free = await json(env, ['plans', 'create', 'Free', '--rpm', '5', '--monthly', '100']);
    expect(free).toMatchObject({ name: 'Free', requests_per_minute: 5, requests_per_month: 100, is_default: true, currency: 'usd' });
    const pro = await json(env, [
      'plans',
      'create',
      'Pro',
      '--rpm',
      'unlimited',
      '--price-cents',
      '2900',
      '--overage',
      '0.05',
      '--trial-days',
      '14',
    ]);
    expect(pro).toMatchObject({
      requests_per_minute: null,
      price_cents: 2900,
      overage_cents_per_request: 0.05,
      trial_days: 14,
      is_default: false,
    });
    expect((await json(env, ['plans', 'update', 'pro', '--monthly', '100000'])).requests_per_month).toBe(100000);
    expect((await json(env, ['plans', 'update', 'pro', '--yearly-price-cents', '29000'])).yearly_price_cents).toBe(29000);
    expect((await json(env, ['plans', 'set-default', 'Pro'])).is_default).toBe(true);

    const list = await cli(['plans', 'list'], env);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+DEFAULT\s+RPM\s+MONTHLY\s+PRICE\s+YEARLY\s+TRIAL\s+OVERAGE$/);
    expect(lines[1]).toMatch(/^plan_\S+\s+Free\s+5\s+100\s+0\.00 usd$/);
    expect(lines[2]).toMatch(/^plan_\S+\s+Pro\s+\*\s+unlimited\s+100000\s+29\.00 usd\s+290\.00 usd\s+14d\s+0\.05c\/req$/);
    // Aligned: each column starts at the same place on every line.
    expect(new Set([lines[0]!.indexOf('PRICE'), lines[1]!.indexOf('0.00 usd'), lines[2]!.indexOf('29.00 usd')]).size).toBe(1);

    const ada = await json(env, ['users', 'create', 'Ada@Example.com', '--name', 'Ada', '--plan', 'free']);
    expect(ada).toMatchObject({ email: 'ada@example.com', name: 'Ada', plan_id: free.id, status: 'active' });
    const bob = await json(env, ['users', 'create', 'bob@example.com']);
    expect(bob.plan_id).toBe(pro.id); // the default plan

    const created = await cli(['keys', 'create', '--user', 'ada@example.com', '--name', 'ci', '--expires', '30d'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = /^\s+(ak_[0-9A-Za-z]{40})$/m.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    expect(created.stdout).toContain('shown only this once');
    const viaJson = await json(env, ['keys', 'create', '--user', ada.id]);
    expect(viaJson.key).toMatch(/^ak_/);

    const [byPlan, human, keys] = await Promise.all([
      json(env, ['users', 'list', '--plan', 'Free']),
      cli(['users', 'get', 'ada@example.com'], env),
      cli(['keys', 'list', '--user', 'ada@example.com', '--json'], env),
    ]);
    expect(byPlan.data.map((u: { id: string }) => u.id)).toEqual([ada.id]);
    expect(human.stdout).toMatch(/plan\s+Free \(plan_/);
    expect(keys.stdout).not.toContain(key);
    expect(keys.stdout).not.toContain(viaJson.key);
    const listed = JSON.parse(keys.stdout).data as {
      id: string;
      name: string;
      status: string;
      prefix: string;
      expires_at: string | null;
    }[];
    expect(listed.map((k) => k.name).sort()).toEqual(['', 'ci']);
    const ci = listed.find((k) => k.name === 'ci')!;
    expect(ci.prefix).toBe(key!.slice(0, 11));
    expect(Date.parse(ci.expires_at!) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    // The CLI wrote to the database the gateway reads: the key authenticates there.
    expect(await seed(dataDir, (d) => d.keys.check(key!))).toMatchObject({ ok: true, record: { userId: ada.id, planId: free.id } });

    expect((await json(env, ['keys', 'revoke', viaJson.id])).status).toBe('revoked');
    expect((await json(env, ['keys', 'list', '--user', ada.id, '--active'])).data.map((k: { id: string }) => k.id)).toEqual([ci.id]);
    expect((await json(env, ['users', 'suspend', 'bob@example.com'])).status).toBe('suspended');
    expect((await json(env, ['users', 'list', '--status', 'suspended'])).data.map((u: { id: string }) => u.id)).toEqual([bob.id]);
    expect((await json(env, ['users', 'activate', bob.id])).status).toBe('active');
    expect(await json(env, ['users', 'delete', 'bob@example.com'])).toEqual({ id: bob.id, deleted: true });
  });

  it('explains mistakes in one line naming the flag, with exit 3 for unknown things', async () => {
    const { env, dataDir } = fresh('errors');
    await seed(dataDir, async (d) => {
      await d.plans.create({ name: 'Pro' });
      await d.users.create({ email: 'ada@example.com' });
    });
    // None of these writes anything, so they run side by side.
    const cases: [string[], number, string | RegExp][] = [
      [['users', 'create', 'ada@example.com'], 1, /^apigate: user: email: ada@example\.com is already the email of user usr_\S+$/],
      [['users', 'create', 'carol@example.com', '--plan', 'gold'], 3, 'apigate: no plan with id or name "gold"'],
      [['users', 'create', 'not-an-email'], 1, 'apigate: user: email: expected an email address such as ada@example.com'],
      [['plans', 'create', 'Basic', '--rpm', '1.5'], 1, 'apigate: --rpm: expected a whole number or "unlimited", got "1.5"'],
      [
        ['plans', 'create', 'Basic', '--rpm', '0'],
        1,
        'apigate: --rpm: must be at least 1; for no limit use null ("unlimited" on the command line)',
      ],
      [['plans', 'create', 'Basic', '--currency', 'dollars'], 1, 'apigate: --currency: expected a 3-letter ISO 4217 code such as usd'],
      [
        ['plans', 'create', 'Basic', '--yearly-price-cents', '0'],
        1,
        'apigate: --yearly-price-cents: must be at least 1; for no yearly price use null ("none" on the command line)',
      ],
      [['plans', 'create', 'pro'], 1, /^apigate: --name: a plan named "pro" already exists/],
      [['plans', 'delete', 'Pro'], 1, /^apigate: plan Pro \(plan_\S+\) is the plan of 1 user\(s\); move them to another plan first$/],
      [['keys', 'create', '--user', 'nobody@example.com'], 3, 'apigate: no user with id or email "nobody@example.com"'],
      [['keys', 'create', '--user', 'ada@example.com', '--expires', 'tomorrow'], 1, /^apigate: --expires: expected a date/],
      [['keys', 'revoke', 'key_nope'], 3, 'apigate: no api key with id key_nope'],
      [['keys', 'create'], 1, /required option '--user <user>' not specified/],
      [['usage', 'show', '--month', '2025-13'], 1, 'apigate: --month: expected YYYY-MM such as 2025-01, got "2025-13"'],
      [['routes', 'add', '/admin/x', 'http://127.0.0.1:1'], 1, /^apigate: route: path_prefix: is reserved for the gateway itself/],
      [
        ['routes', 'add', '/x', 'http://127.0.0.1:1', '--methods', 'GET,FETCH'],
        1,
        'apigate: --methods: expected HTTP methods (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)',
      ],
      [['routes', 'update', '/nowhere', '--disable'], 3, 'apigate: no route with id or path prefix "/nowhere"'],
    ];
    const results = await inBatches(cases, ([args]) => failure(env, args));
    results.forEach((r, i) => {
      const [args, code, line] = cases[i]!;
      expect(r.code, args.join(' ')).toBe(code);
      if (typeof line === 'string') expect(r.line).toBe(line);
      else expect(r.line).toMatch(line);
    });
  });

  it('manages routes', async () => {
    const { env } = fresh('routes');
    const r = await json(env, [
      'routes',
      'add',
      '/weather/',
      'http://127.0.0.1:3000/v1',
      '--strip-prefix',
      '--methods',
      'get,POST',
      '--timeout-ms',
      '2500',
    ]);
    expect(r).toMatchObject({
      path_prefix: '/weather',
      upstream_url: 'http://127.0.0.1:3000/v1',
      strip_prefix: true,
      methods: ['GET', 'POST'],
      timeout_ms: 2500,
      enabled: true,
    });
    await json(env, ['routes', 'add', '/', 'http://127.0.0.1:4000']);
    const up = await json(env, [
      'routes',
      'update',
      '/weather',
      '--no-strip-prefix',
      '--methods',
      'all',
      '--timeout-ms',
      'default',
      '--disable',
    ]);
    expect(up).toMatchObject({ strip_prefix: false, methods: [], timeout_ms: null, enabled: false });
    expect((await json(env, ['routes', 'update', r.id, '--enable', '--upstream', 'http://127.0.0.1:3001'])).upstream_url).toBe(
      'http://127.0.0.1:3001',
    );
    const [table, dup, nothing] = await Promise.all([
      cli(['routes', 'list'], env),
      failure(env, ['routes', 'add', '/weather', 'http://x']),
      failure(env, ['routes', 'update', r.id]),
    ]);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+PREFIX\s+UPSTREAM\s+STRIP\s+METHODS\s+TIMEOUT\s+ENABLED$/);
    expect(
      table.stdout
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(['/weather', '/']);
    expect(dup).toEqual({
      code: 1,
      line: expect.stringMatching(/^apigate: route: path_prefix: \/weather is already the prefix of route rt_/),
    });
    expect(nothing.line).toBe('apigate: nothing to change: give at least one option (see --help)');
    expect(await json(env, ['routes', 'remove', '/'])).toMatchObject({ deleted: true });
    expect((await json(env, ['routes', 'list'])).data.map((x: { id: string }) => x.id)).toEqual([r.id]);
  });

  it('shows usage for everyone, one user (with the quota) and one key', async () => {
    const { env, dataDir } = fresh('usage');
    const { userId, keyId } = await seed(dataDir, async (d) => {
      await d.plans.create({ name: 'Free', requestsPerMonth: 100 });
      const user = await d.users.create({ email: 'ada@example.com' });
      const { apiKey } = await d.keys.create({ userId: user.id });
      await d.usage.applyBatch('cli-test', [
        { keyId: apiKey.id, userId: user.id, at: Date.parse('2025-06-15T08:00:00Z'), requests: 80, bytesOut: 4096, errors: 3 },
      ]);
      return { userId: user.id, keyId: apiKey.id };
    });
    const [all, everyone, mine, human, one, empty] = await Promise.all([
      json(env, ['usage', 'show', '--month', '2025-06']),
      cli(['usage', 'show', '--month', '2025-06'], env),
      json(env, ['usage', 'show', '--user', 'ada@example.com', '--month', '2025-06']),
      cli(['usage', 'show', '--user', 'ada@example.com', '--month', '2025-06'], env),
      json(env, ['usage', 'show', '--key', keyId, '--month', '2025-06']),
      json(env, ['usage', 'show', '--month', '2025-05']),
    ]);
    expect(all).toEqual({ month: '2025-06', data: [{ user_id: userId, requests: 80, bytes_in: 0, bytes_out: 4096, errors: 3 }] });
    expect(everyone.stdout).toMatch(/ada@example\.com\s+Free\s+80\s+100\s+80%\s+0\s+4096\s+3/);
    expect(mine).toMatchObject({
      user_id: userId,
      totals: { requests: 80 },
      keys: [{ key_id: keyId, requests: 80 }],
      quota: { limit: 100, remaining: 20, resets_at: '2025-07-01T00:00:00.000Z' },
    });
    expect(human.stdout).toContain('ada@example.com');
    expect(human.stdout).toContain('80 of 100 requests (80%), resets 2025-07-01 00:00:00Z');
    expect(one).toMatchObject({ key_id: keyId, user_id: userId, totals: { requests: 80, errors: 3 } });
    expect(empty.data).toEqual([]);
  });

  it('creates admin tokens the running gateway accepts until revoked; APIGATE_ADMIN_TOKEN works too', async () => {
    const fixed = 'env-admin-token-for-tests-0123456789';
    // The development providers, selected the way an operator would: CACHE_PROVIDER=memory and so on.
    const providers = Object.fromEntries(
      DEV_PROVIDERS.map((p) => p.split('/')).map(([cap, name]) => [`${cap!.toUpperCase()}_PROVIDER`, name!]),
    );
    const serveEnv = cleanEnv({ APIGATE_DATA_DIR: tempDir('admin-token'), APIGATE_ADMIN_TOKEN: fixed, ...providers });
    const created = await json(serveEnv, ['admin', 'token', 'create', '--name', 'ops']);
    expect(created.token).toMatch(/^agt_[0-9A-Za-z]{40}$/);
    const served = await serve(BIN, serveEnv);
    try {
      const get = (token?: string) => fetch(`${served.url}/admin/plans`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      expect((await get()).status).toBe(401);
      expect((await get(created.token)).status).toBe(200);
      expect((await get(fixed)).status).toBe(200);
      expect((await fetch(`${served.url}/admin/health`)).status).toBe(200);

      const listed = await cli(['admin', 'token', 'list'], serveEnv);
      expect(listed.stdout).toMatch(new RegExp(`^${created.id}\\s+${created.prefix}\\s+ops\\s+active\\s+\\d{4}-`, 'm')); // last used is set
      expect(listed.stdout).not.toContain(created.token);
      expect((await json(serveEnv, ['admin', 'token', 'revoke', created.id])).revoked_at).toEqual(expect.any(String));
      expect((await get(created.token)).status).toBe(401);
    } finally {
      await served.stop();
    }
  });
});
