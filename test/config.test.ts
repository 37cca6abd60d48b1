// Configuration (src/config.ts): environment variables, the JSON file, validation.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ConfigError, DEFAULT_DISCLAIMER, loadConfig, SETTINGS, type Config } from '../src/config.ts';
import type { Test } from './helpers/database.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
/** Writes a config file (an object is written as JSON, a string as is) and returns its path. */
function configFile(content: unknown): string {
  const file = path.join(dir, `config-${++fileCounter}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The ConfigError thrown by loadConfig, failing the test when there is none. */
function configError(t: Test, env: NodeJS.ProcessEnv, configPath?: string): string {
  try {
    loadConfig(env, configPath);
  } catch (err) {
    t.type(err, ConfigError, 'throws a ConfigError');
    t.equal((err as Error).name, 'ConfigError');
    return (err as Error).message;
  }
  t.fail(`no error for ${JSON.stringify(env)} ${configPath ?? ''}`);
  return '';
}

const DEFAULTS: Config = {
  database: { url: undefined, readUrl: undefined, dataDir: './data', queryTimeoutMs: 5000, connectTimeoutMs: 3000 },
  http: { host: '127.0.0.1', port: 8080 },
  logLevel: 'info',
  rooms: [],
  stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
  weeks: { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 },
  cacheSeconds: 60,
  pings: { prefix: '!ping', trustedResponders: [] },
  queueCapacity: 10_000,
  bot: undefined,
  probes: {
    accounts: [],
    schedule: '*/10 * * * *',
    jitterSeconds: 60,
    timeoutSeconds: 60,
    responders: [],
    clockOffsetThresholdMs: 250,
  },
  metricsServerLabels: 100,
  leaderLock: true,
  retentionDays: 400,
  operator: { token: undefined, adminPowerLevel: 50 },
  spill: { dir: tmpdir(), maxBytes: 2048 * 1024 * 1024 },
};

t.test('defaults', async (t) => {
  t.strictSame(loadConfig({}), DEFAULTS);
  t.strictSame(loadConfig({ UNRELATED: 'x', PATH: '/usr/bin' }), DEFAULTS, 'other variables are ignored');
  t.strictSame(
    loadConfig({ PINGBOARD_PORT: '', DATABASE_URL: '', PINGBOARD_ROOMS: '' }),
    DEFAULTS,
    'an empty variable counts as unset',
  );
  t.match(DEFAULT_DISCLAIMER, /one-way/);
});

t.test('every environment setting is parsed', async (t) => {
  const config = loadConfig({
    DATABASE_URL: 'postgres://pingboard:secret@db.example:5432/pingboard',
    DATABASE_READ_URL: 'postgres://reader:secret@replica.example:5432/pingboard',
    PINGBOARD_DATA_DIR: '/var/lib/pingboard',
    PINGBOARD_DB_QUERY_TIMEOUT_MS: '2500',
    PINGBOARD_DB_CONNECT_TIMEOUT_MS: '1500',
    PINGBOARD_HOST: '0.0.0.0',
    PINGBOARD_PORT: '9090',
    PINGBOARD_LOG_LEVEL: 'DEBUG',
    PINGBOARD_ROOMS: '!ping:maunium.net, #ping-no-synapse:maunium.net,!v12room',
    PINGBOARD_DISCLAIMER: 'Our own words.',
    PINGBOARD_MIN_DELAY_MS: '1',
    PINGBOARD_MAX_DELAY_MS: '120000',
    PINGBOARD_MIN_PINGS: '3',
    PINGBOARD_WEEK_TIME_ZONE: 'Europe/Berlin',
    PINGBOARD_WEEK_CLOSE_DAY: 'Friday',
    PINGBOARD_WEEK_CLOSE_HOUR: '10',
    PINGBOARD_FREEZE_GRACE_MINUTES: '0',
    PINGBOARD_CACHE_SECONDS: '3600',
    PINGBOARD_SPILL_DIR: '/var/cache/pingboard',
    PINGBOARD_SPILL_MAX_MB: '0',
    PINGBOARD_PING_PREFIX: '!p',
    PINGBOARD_TRUSTED_RESPONDERS: '@echo:maunium.net',
    PINGBOARD_QUEUE_CAPACITY: '500',
    PINGBOARD_PROBES:
      '[{"id":"p1","homeserver_url":"https://hs.example.org","user_id":"@probe:example.org","access_token":"t","room":"#ping-no-synapse:maunium.net"}]',
    PINGBOARD_PROBE_SCHEDULE: '*/5 * * * *',
    PINGBOARD_PROBE_JITTER_SECONDS: '30',
    PINGBOARD_PROBE_TIMEOUT_SECONDS: '20',
    PINGBOARD_PROBE_RESPONDERS: '@echo:maunium.net, @pingboard:example.org',
    PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS: '100',
    PINGBOARD_METRICS_SERVER_LABELS: '500',
    PINGBOARD_LEADER_LOCK: 'off',
    PINGBOARD_RETENTION_DAYS: '30',
    PINGBOARD_ADMIN_TOKEN: 'operator-token-0123456789abcdef0123',
    PINGBOARD_ADMIN_POWER_LEVEL: '75',
  });
  t.strictSame(config, {
    database: {
      url: 'postgres://pingboard:secret@db.example:5432/pingboard',
      readUrl: 'postgres://reader:secret@replica.example:5432/pingboard',
      dataDir: '/var/lib/pingboard',
      queryTimeoutMs: 2500,
      connectTimeoutMs: 1500,
    },
    http: { host: '0.0.0.0', port: 9090 },
    logLevel: 'debug',
    rooms: [
      { id: '!ping:maunium.net', disclaimer: 'Our own words.' },
      { id: '#ping-no-synapse:maunium.net', disclaimer: 'Our own words.' },
      { id: '!v12room', disclaimer: 'Our own words.' },
    ],
    stats: { minDelayMs: 1, maxDelayMs: 120_000, minPings: 3 },
    weeks: { timeZone: 'Europe/Berlin', closeWeekday: 5, closeHour: 10, graceMinutes: 0 },
    cacheSeconds: 3600,
    pings: { prefix: '!p', trustedResponders: ['@echo:maunium.net'] },
    queueCapacity: 500,
    bot: undefined,
    probes: {
      accounts: [
        {
          id: 'p1',
          homeserverUrl: 'https://hs.example.org',
          userId: '@probe:example.org',
          accessToken: 't',
          password: undefined,
          room: '#ping-no-synapse:maunium.net',
        },
      ],
      schedule: '*/5 * * * *',
      jitterSeconds: 30,
      timeoutSeconds: 20,
      responders: ['@echo:maunium.net', '@pingboard:example.org'],
      clockOffsetThresholdMs: 100,
    },
    metricsServerLabels: 500,
    leaderLock: false,
    retentionDays: 30,
    operator: { token: 'operator-token-0123456789abcdef0123', adminPowerLevel: 75 },
    spill: { dir: '/var/cache/pingboard', maxBytes: 0 },
  });
  t.equal(
    loadConfig({ DATABASE_URL: 'postgresql://localhost/pingboard' }).database.url,
    'postgresql://localhost/pingboard',
    'postgresql:// too',
  );
  t.equal(loadConfig({ PINGBOARD_PORT: '0' }).http.port, 0, 'port 0 picks a free port');
  t.throws(
    () => loadConfig({ PINGBOARD_LEADER_LOCK: 'yes' }),
    { message: /^PINGBOARD_LEADER_LOCK: .*"yes"/ },
    'the leader lock is on or off, nothing else',
  );
  t.equal(loadConfig({ PINGBOARD_PORT: ' 65535 ' }).http.port, 65535, 'surrounding spaces are ignored');
  for (const [day, number] of [
    ['monday', 1],
    ['tuesday', 2],
    ['wednesday', 3],
    ['thursday', 4],
    ['friday', 5],
    ['saturday', 6],
    ['sunday', 7],
  ] as const) {
    t.equal(
      loadConfig({ PINGBOARD_WEEK_CLOSE_DAY: day }).weeks.closeWeekday,
      number,
      `${day} is ISO weekday ${number}`,
    );
  }
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ PINGBOARD_LOG_LEVEL: level }).logLevel, level);
  }
  // ICU may canonicalise to a legacy alias (Asia/Kolkata → Asia/Calcutta): what matters is the same zone.
  const kolkata = loadConfig({ PINGBOARD_WEEK_TIME_ZONE: 'Asia/Kolkata' }).weeks.timeZone;
  t.match(kolkata, /^Asia\/(Kolkata|Calcutta)$/);
  t.equal(
    new Date('2026-11-16T00:00:00Z').toLocaleString('en-US', { timeZone: kolkata, hourCycle: 'h23' }),
    '11/16/2026, 05:30:00',
  );
  t.equal(
    loadConfig({ PINGBOARD_WEEK_TIME_ZONE: 'europe/berlin' }).weeks.timeZone,
    'Europe/Berlin',
    'zone names are canonicalised',
  );
  t.equal(loadConfig({ PINGBOARD_WEEK_CLOSE_HOUR: '23' }).weeks.closeHour, 23);
  t.equal(loadConfig({ PINGBOARD_MIN_DELAY_MS: '600000' }).stats.minDelayMs, 600_000, 'min = max is allowed');
  t.same(
    loadConfig({ PINGBOARD_ROOMS: '!a:x.org,,!b:x.org,' }).rooms.map((r) => r.id),
    ['!a:x.org', '!b:x.org'],
    'empty list items are skipped',
  );
});

t.test('bad values name the setting and what it allows', async (t) => {
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ PINGBOARD_PORT: 'abc' }, /^PINGBOARD_PORT: expected an integer from 0 to 65535, got "abc"$/],
    [{ PINGBOARD_PORT: '65536' }, /^PINGBOARD_PORT: expected an integer from 0 to 65535, got "65536"$/],
    [{ PINGBOARD_PORT: '-1' }, /^PINGBOARD_PORT: .*from 0 to 65535/],
    [{ PINGBOARD_PORT: '80.5' }, /^PINGBOARD_PORT: .*integer/],
    [{ PINGBOARD_PORT: '1e3' }, /^PINGBOARD_PORT: .*integer/],
    [{ PINGBOARD_PORT: '0x50' }, /^PINGBOARD_PORT: .*integer/],
    [{ PINGBOARD_PORT: '99999999999999999999' }, /^PINGBOARD_PORT: .*integer/],
    [{ PINGBOARD_MIN_DELAY_MS: '0' }, /^PINGBOARD_MIN_DELAY_MS: expected an integer from 1 to 86400000, got "0"$/],
    [{ PINGBOARD_MAX_DELAY_MS: 'lots' }, /^PINGBOARD_MAX_DELAY_MS: expected an integer from 1 to 86400000/],
    [{ PINGBOARD_MIN_PINGS: '0' }, /^PINGBOARD_MIN_PINGS: expected an integer from 1 to 1000000/],
    [{ PINGBOARD_WEEK_CLOSE_HOUR: '24' }, /^PINGBOARD_WEEK_CLOSE_HOUR: expected an integer from 0 to 23, got "24"$/],
    [
      { PINGBOARD_FREEZE_GRACE_MINUTES: '10081' },
      /^PINGBOARD_FREEZE_GRACE_MINUTES: expected an integer from 0 to 10080/,
    ],
    [{ PINGBOARD_CACHE_SECONDS: '3601' }, /^PINGBOARD_CACHE_SECONDS: expected an integer from 0 to 3600/],
    [{ PINGBOARD_SPILL_MAX_MB: '-1' }, /^PINGBOARD_SPILL_MAX_MB: expected an integer from 0 to 1048576, got "-1"$/],
    [{ PINGBOARD_SPILL_MAX_MB: '2 GB' }, /^PINGBOARD_SPILL_MAX_MB: expected an integer from 0 to 1048576/],
    [{ PINGBOARD_SPILL_DIR: '   ' }, /^PINGBOARD_SPILL_DIR: expected a non-empty string/],
    [
      { PINGBOARD_DB_QUERY_TIMEOUT_MS: '0' },
      /^PINGBOARD_DB_QUERY_TIMEOUT_MS: expected an integer from 100 to 3600000, got "0"$/,
    ],
    [
      { PINGBOARD_DB_CONNECT_TIMEOUT_MS: '1e3' },
      /^PINGBOARD_DB_CONNECT_TIMEOUT_MS: expected an integer from 100 to 600000, got "1e3"$/,
    ],
    [
      { PINGBOARD_LOG_LEVEL: 'loud' },
      /^PINGBOARD_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"$/,
    ],
    [
      { PINGBOARD_WEEK_CLOSE_DAY: 'funday' },
      /^PINGBOARD_WEEK_CLOSE_DAY: expected one of monday, tuesday, wednesday, thursday, friday, saturday, sunday, got "funday"$/,
    ],
    [{ PINGBOARD_WEEK_CLOSE_DAY: '5' }, /^PINGBOARD_WEEK_CLOSE_DAY: expected one of monday/],
    [
      { PINGBOARD_WEEK_TIME_ZONE: 'Mars/Olympus_Mons' },
      /^PINGBOARD_WEEK_TIME_ZONE: expected an IANA time zone such as UTC or Europe\/Berlin, got "Mars\/Olympus_Mons"$/,
    ],
    [{ PINGBOARD_WEEK_TIME_ZONE: 'CEST' }, /^PINGBOARD_WEEK_TIME_ZONE: expected an IANA time zone/],
    [{ PINGBOARD_DISCLAIMER: '   ' }, /^PINGBOARD_DISCLAIMER: expected a non-empty string/],
    [{ PINGBOARD_HOST: ' ' }, /^PINGBOARD_HOST: expected a non-empty string/],
    [{ PINGBOARD_DATA_DIR: '  ' }, /^PINGBOARD_DATA_DIR: expected a non-empty string/],
    [
      { PINGBOARD_ROOMS: '!a:x.org,not-a-room' },
      /^PINGBOARD_ROOMS: expected room IDs \(!id or !id:server\) or aliases \(#alias:server\), got "not-a-room"$/,
    ],
    [{ PINGBOARD_ROOMS: '#alias-without-server' }, /^PINGBOARD_ROOMS: expected room IDs/],
    [{ PINGBOARD_ROOMS: '#ping:bad|server' }, /^PINGBOARD_ROOMS: expected room IDs/],
    [{ PINGBOARD_ROOMS: '!has space:x.org' }, /^PINGBOARD_ROOMS: expected room IDs/],
  ];
  for (const [env, expected] of cases) {
    t.match(configError(t, env), expected, JSON.stringify(env));
  }
});

t.test('DATABASE_URL must be a postgres URL, and a rejected one is never echoed', async (t) => {
  const password = 'hunter2-S3cret';
  for (const value of [
    `mysql://pingboard:${password}@db.example/pingboard`,
    `https://pingboard:${password}@db.example/pingboard`,
    `not a url ${password}`,
    `//pingboard:${password}@db.example/pingboard`,
    password,
    // Without "//", pg would take everything after the scheme (password included) for a database name.
    `postgres:pingboard:${password}@db.example/pingboard`,
    `postgresql:${password}@db.example/pingboard`,
  ]) {
    const message = configError(t, { DATABASE_URL: value });
    t.match(
      message,
      /^DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL, got /,
      'names the setting and what it allows',
    );
    t.notMatch(message, password, `the password is not echoed (${message})`);
    t.notMatch(message, 'db.example', 'nor the rest of the URL');
  }
  t.match(
    configError(t, { DATABASE_URL: `mysql://u:${password}@h/db` }),
    /got a mysql: URL$/,
    'only the scheme is named',
  );
  t.equal(
    loadConfig({ DATABASE_URL: 'postgres:///pingboard?host=/var/run/postgresql' }).database.url,
    'postgres:///pingboard?host=/var/run/postgresql',
    'a Unix-socket URL without a host is fine',
  );
  t.equal(
    loadConfig({ DATABASE_URL: 'PostgreSQL://db.example/pingboard' }).database.url,
    'PostgreSQL://db.example/pingboard',
    'the scheme is case-insensitive',
  );
  const file = configFile({ database_url: `redis://u:${password}@h/0` });
  const fromFile = configError(t, {}, file);
  t.match(fromFile, `${file}: database_url: expected a postgres`);
  t.notMatch(fromFile, password);
});

t.test('DATABASE_READ_URL: a postgres URL, never echoed, and only beside DATABASE_URL', async (t) => {
  const password = 'hunter2-S3cret';
  const primary = 'postgres://pingboard@db.example/pingboard';
  for (const value of [`mysql://u:${password}@replica.example/db`, `not a url ${password}`]) {
    const message = configError(t, { DATABASE_URL: primary, DATABASE_READ_URL: value });
    t.match(message, /^DATABASE_READ_URL: expected a postgres:\/\/ or postgresql:\/\/ URL, got /, 'names the setting');
    t.notMatch(message, password, `the password is not echoed (${message})`);
  }
  // Without DATABASE_URL the service runs on PGlite, which has no replica to read.
  t.match(
    configError(t, { DATABASE_READ_URL: `postgres://u:${password}@replica.example/pingboard` }),
    /^DATABASE_READ_URL: .*DATABASE_URL, which is unset: set DATABASE_URL too \(the embedded PGlite database has no replicas\)$/,
  );
  const file = configFile({ database_read_url: 'postgres://replica.example/pingboard' });
  t.match(configError(t, {}, file), `${file}: database_read_url: a read replica`);
  t.equal(
    loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: 'postgresql://replica.example/pingboard' }).database.readUrl,
    'postgresql://replica.example/pingboard',
  );
});

t.test('delay bounds, duplicate rooms', async (t) => {
  t.match(
    configError(t, { PINGBOARD_MIN_DELAY_MS: '500', PINGBOARD_MAX_DELAY_MS: '100' }),
    /^PINGBOARD_MAX_DELAY_MS: expected at least PINGBOARD_MIN_DELAY_MS \(500\), got 100$/,
  );
  t.match(
    configError(t, { PINGBOARD_MIN_DELAY_MS: '700000' }),
    /PINGBOARD_MAX_DELAY_MS: expected at least PINGBOARD_MIN_DELAY_MS \(700000\), got 600000/,
    'against the default maximum too',
  );
  t.match(
    configError(t, { PINGBOARD_ROOMS: '!a:x.org,!b:x.org, !a:x.org' }),
    /^PINGBOARD_ROOMS: room !a:x\.org is listed twice$/,
  );
  const file = configFile({ rooms: ['#ping:maunium.net', { id: '#ping:maunium.net', disclaimer: 'Again.' }] });
  t.match(configError(t, {}, file), `${file}: rooms: room #ping:maunium.net is listed twice`);
});

t.test('the config file', async (t) => {
  const file = configFile({
    database_url: 'postgres://localhost/pingboard',
    database_read_url: 'postgres://replica/pingboard',
    data_dir: './elsewhere',
    host: '::1',
    port: 8448,
    log_level: 'warn',
    disclaimer: 'File disclaimer.',
    rooms: [
      '!plain:maunium.net',
      { id: '!own:maunium.net', disclaimer: 'Work-in-progress servers.' },
      { id: '#alias:example.org' },
    ],
    min_delay_ms: 5,
    max_delay_ms: '300000',
    min_pings: 2,
    week_time_zone: 'America/New_York',
    week_close_day: 'sunday',
    week_close_hour: 23,
    freeze_grace_minutes: 15,
    cache_seconds: 0,
    spill_max_mb: 64,
  });
  const expected: Config = {
    database: {
      url: 'postgres://localhost/pingboard',
      readUrl: 'postgres://replica/pingboard',
      dataDir: './elsewhere',
      queryTimeoutMs: 5000,
      connectTimeoutMs: 3000,
    },
    http: { host: '::1', port: 8448 },
    logLevel: 'warn',
    rooms: [
      { id: '!plain:maunium.net', disclaimer: 'File disclaimer.' },
      { id: '!own:maunium.net', disclaimer: 'Work-in-progress servers.' },
      { id: '#alias:example.org', disclaimer: 'File disclaimer.' },
    ],
    stats: { minDelayMs: 5, maxDelayMs: 300_000, minPings: 2 },
    weeks: { timeZone: 'America/New_York', closeWeekday: 7, closeHour: 23, graceMinutes: 15 },
    cacheSeconds: 0,
    pings: DEFAULTS.pings,
    queueCapacity: DEFAULTS.queueCapacity,
    bot: undefined,
    probes: DEFAULTS.probes,
    metricsServerLabels: 100,
    leaderLock: true,
    retentionDays: 400,
    operator: DEFAULTS.operator,
    spill: { dir: DEFAULTS.spill.dir, maxBytes: 64 * 1024 * 1024 },
  };
  t.strictSame(loadConfig({}, file), expected, 'via loadConfig(env, path)');
  t.strictSame(loadConfig({ PINGBOARD_CONFIG: file }), expected, 'via PINGBOARD_CONFIG');
  t.strictSame(
    loadConfig({ PINGBOARD_CONFIG: configFile({ port: 1 }) }, file),
    expected,
    'the explicit path (--config) wins over PINGBOARD_CONFIG',
  );
  t.strictSame(loadConfig({}, configFile({})), DEFAULTS, 'an empty object gives the defaults');
  t.same(
    loadConfig({}, configFile({ rooms: '!a:x.org,!b:x.org' })).rooms.map((r) => r.id),
    ['!a:x.org', '!b:x.org'],
    'rooms as a comma-separated string',
  );
  t.same(
    loadConfig({}, configFile({ rooms: [{ id: '!a:x.org' }] })).rooms,
    [{ id: '!a:x.org', disclaimer: DEFAULT_DISCLAIMER }],
    'a room without its own disclaimer gets the global one',
  );

  // Environment variables win over the file, setting by setting.
  const overridden = loadConfig({
    PINGBOARD_CONFIG: file,
    PINGBOARD_PORT: '9000',
    PINGBOARD_ROOMS: '!env:maunium.net',
    PINGBOARD_DISCLAIMER: 'Env disclaimer.',
    PINGBOARD_WEEK_CLOSE_DAY: 'friday',
    DATABASE_URL: 'postgresql://other/db',
  });
  t.equal(overridden.http.port, 9000);
  t.same(overridden.rooms, [{ id: '!env:maunium.net', disclaimer: 'Env disclaimer.' }]);
  t.equal(overridden.weeks.closeWeekday, 5);
  t.equal(overridden.database.url, 'postgresql://other/db');
  t.equal(overridden.http.host, '::1', 'settings the environment does not give still come from the file');
  t.equal(overridden.weeks.timeZone, 'America/New_York');
  t.same(
    loadConfig({ PINGBOARD_DISCLAIMER: 'Env.' }, file).rooms.map((r) => r.disclaimer),
    ['Env.', 'Work-in-progress servers.', 'Env.'],
    "the environment's disclaimer applies to file rooms without their own",
  );
  t.equal(loadConfig({ PINGBOARD_PORT: '' }, file).http.port, 8448, 'an empty variable does not override the file');
});

t.test('bad config files', async (t) => {
  const typo = configFile({ port: 8080, prot: 8081 });
  const unknown = configError(t, {}, typo);
  t.match(unknown, `${typo}: unknown setting "prot"`, 'an unknown key is named');
  t.match(unknown, /known: .*port/, 'and the known keys are listed');
  t.match(
    configError(t, {}, configFile({ PINGBOARD_PORT: 8080 })),
    /unknown setting "PINGBOARD_PORT"/,
    'environment names are not file keys',
  );
  t.match(configError(t, {}, configFile('{"__proto__": {"port": 1}}')), /unknown setting "__proto__"/);

  const broken = configFile('{"port": 8080,');
  t.match(
    configError(t, {}, broken),
    new RegExp(`^PINGBOARD_CONFIG: cannot read ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} as JSON: `),
  );
  t.match(configError(t, { PINGBOARD_CONFIG: broken }), /cannot read .* as JSON/);
  t.match(
    configError(t, {}, path.join(dir, 'missing.json')),
    /cannot read .*missing\.json as JSON: .*ENOENT/,
    'a missing file',
  );
  t.match(configError(t, {}, configFile('[1, 2]')), /must hold a JSON object/);
  t.match(configError(t, {}, configFile('null')), /must hold a JSON object/);
  t.match(configError(t, {}, configFile('"port"')), /must hold a JSON object/);

  const cases: [unknown, RegExp][] = [
    [{ port: 'eighty' }, /: port: expected an integer from 0 to 65535, got "eighty"$/],
    [{ port: 80.5 }, /: port: expected an integer/],
    [{ port: true }, /: port: expected an integer/],
    [{ port: null }, /: port: expected an integer/],
    [{ log_level: 3 }, /: log_level: expected one of fatal/],
    [{ host: 42 }, /: host: expected a non-empty string, got 42$/],
    [{ week_time_zone: 'Nowhere/Land' }, /: week_time_zone: expected an IANA time zone/],
    [{ week_time_zone: 7 }, /: week_time_zone: expected an IANA time zone/],
    [{ week_close_day: 5 }, /: week_close_day: expected one of monday/],
    [{ rooms: 42 }, /: rooms: expected a comma-separated list of room IDs or aliases, got 42$/],
    [{ rooms: ['!ok:x.org', 'bad'] }, /: rooms\[1\]: expected room IDs/],
    [{ rooms: [7] }, /: rooms\[0\]: expected a room ID or \{ "id", "disclaimer" \}, got 7$/],
    [{ rooms: [null] }, /: rooms\[0\]: expected a room ID or/],
    [{ rooms: [{ disclaimer: 'no id' }] }, /: rooms\[0\]\.id: expected room IDs/],
    [{ rooms: [{ id: 'bad' }] }, /: rooms\[0\]\.id: expected room IDs/],
    [{ rooms: [{ id: '!a:x.org', disclaimer: '' }] }, /: rooms\[0\]\.disclaimer: expected a non-empty string/],
    [{ rooms: [{ id: '!a:x.org', disclaimer: 5 }] }, /: rooms\[0\]\.disclaimer: expected a non-empty string/],
    [{ min_delay_ms: 20, max_delay_ms: 10 }, /MAX_DELAY_MS: expected at least .*\(20\), got 10/],
  ];
  for (const [content, expected] of cases) {
    const file = configFile(content);
    const message = configError(t, {}, file);
    t.match(message, expected, JSON.stringify(content));
    if (!/MAX_DELAY_MS/.test(message)) t.ok(message.startsWith(`${file}: `), 'names the file');
  }
});

t.test('the configuration is frozen', async (t) => {
  const config = loadConfig({ PINGBOARD_ROOMS: '!a:x.org' });
  for (const [name, part] of Object.entries({
    config,
    database: config.database,
    http: config.http,
    rooms: config.rooms,
    room: config.rooms[0],
    stats: config.stats,
    weeks: config.weeks,
  })) {
    t.ok(Object.isFrozen(part), `${name} is frozen`);
  }
  t.throws(
    () => {
      (config.http as { port: number }).port = 1;
    },
    TypeError,
    'assignment throws in strict mode',
  );
  t.throws(() => {
    (config.rooms as unknown as unknown[]).push({ id: '!b:x.org', disclaimer: 'x' });
  }, TypeError);
  t.equal(config.http.port, 8080);
  t.equal(config.rooms.length, 1);
});

t.test('bot settings: parsed with their defaults, and every bad value named', async (t) => {
  const base = {
    PINGBOARD_HOMESERVER_URL: 'https://matrix.example.org/',
    PINGBOARD_BOT_USER_ID: '@pingboard:example.org',
  };
  const config = loadConfig({ ...base, PINGBOARD_BOT_ACCESS_TOKEN: 'syt_secret' });
  t.strictSame(config.bot, {
    homeserverUrl: 'https://matrix.example.org',
    userId: '@pingboard:example.org',
    accessToken: 'syt_secret',
    password: undefined,
    maxPingAgeSeconds: 300,
    answersPerMinute: 20,
    backfillDays: 0,
  });
  t.equal(loadConfig({}).bot, undefined, 'no homeserver, no bot');
  const full = loadConfig({
    ...base,
    PINGBOARD_BOT_PASSWORD: 'pw',
    PINGBOARD_PING_PREFIX: '!p',
    PINGBOARD_TRUSTED_RESPONDERS: '@echo:maunium.net, @bot:x.org',
    PINGBOARD_MAX_PING_AGE_SECONDS: '60',
    PINGBOARD_ANSWERS_PER_MINUTE: '2',
    PINGBOARD_QUEUE_CAPACITY: '50',
  });
  t.hasStrict(full.bot, { password: 'pw', maxPingAgeSeconds: 60, answersPerMinute: 2 });
  t.strictSame(full.pings, { prefix: '!p', trustedResponders: ['@echo:maunium.net', '@bot:x.org'] });
  t.equal(full.queueCapacity, 50);
  for (const [env, expected] of [
    [{ PINGBOARD_HOMESERVER_URL: 'ftp://x' }, /^PINGBOARD_HOMESERVER_URL: expected an http/],
    [{ PINGBOARD_HOMESERVER_URL: 'https://x.org' }, /^PINGBOARD_BOT_USER_ID: expected a user ID/],
    [{ ...base }, /^PINGBOARD_BOT_ACCESS_TOKEN: expected an access token, or PINGBOARD_BOT_PASSWORD/],
    [{ ...base, PINGBOARD_BOT_USER_ID: 'pingboard' }, /^PINGBOARD_BOT_USER_ID: expected a user ID/],
    [
      { ...base, PINGBOARD_BOT_PASSWORD: 'pw', PINGBOARD_TRUSTED_RESPONDERS: '@ok:x.org,not-a-user' },
      /^PINGBOARD_TRUSTED_RESPONDERS: expected a comma-separated list of user IDs/,
    ],
    [
      { ...base, PINGBOARD_BOT_PASSWORD: 'pw', PINGBOARD_PING_PREFIX: '! ping' },
      /^PINGBOARD_PING_PREFIX: expected a prefix without white space/,
    ],
    // The ping settings serve the probes too: checked with no bot as well.
    [
      { PINGBOARD_TRUSTED_RESPONDERS: 'not-a-user' },
      /^PINGBOARD_TRUSTED_RESPONDERS: expected a comma-separated list of user IDs/,
    ],
    [{ PINGBOARD_PING_PREFIX: '! ping' }, /^PINGBOARD_PING_PREFIX: expected a prefix without white space/],
    [{ PINGBOARD_QUEUE_CAPACITY: '0' }, /^PINGBOARD_QUEUE_CAPACITY: expected an integer from 1/],
    [
      { ...base, PINGBOARD_BOT_PASSWORD: 'pw', PINGBOARD_ANSWERS_PER_MINUTE: '0' },
      /^PINGBOARD_ANSWERS_PER_MINUTE: expected an integer from 1/,
    ],
  ] as const) {
    const message = configError(t, env);
    t.match(message, expected, JSON.stringify(env));
    t.notMatch(message, 'syt_secret');
  }
});

t.test('the operator token: long enough, and never repeated in an error', async (t) => {
  const token = 'a'.repeat(32);
  t.same(loadConfig({ PINGBOARD_ADMIN_TOKEN: token, PINGBOARD_ADMIN_POWER_LEVEL: '100' }).operator, {
    token,
    adminPowerLevel: 100,
  });
  const short = configError(t, { PINGBOARD_ADMIN_TOKEN: 'hunter2-short' });
  t.equal(
    short,
    'PINGBOARD_ADMIN_TOKEN: expected at least 32 characters without spaces (e.g. openssl rand -hex 32); the value given is not shown',
  );
  t.notMatch(short, 'hunter2');
  t.match(configError(t, { PINGBOARD_ADMIN_TOKEN: `${token} ${token}` }), /^PINGBOARD_ADMIN_TOKEN: /, 'no spaces');
  t.match(
    configError(t, { PINGBOARD_ADMIN_POWER_LEVEL: '0' }),
    /^PINGBOARD_ADMIN_POWER_LEVEL: expected an integer from 1 to 1000000/,
  );
});

/** loadConfig's error message, or undefined when it accepts the settings. */
function messageOf(env: NodeJS.ProcessEnv, configPath?: string): string | undefined {
  try {
    loadConfig(env, configPath);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// SETTINGS is what docs/configuration.md is checked against, so it must be
// exactly what loadConfig reads: each pair's variable and key, and no other.
t.test('SETTINGS lists every setting loadConfig reads, each variable with its file key', async (t) => {
  // With a bot, every setting is looked up (the bot's only with a homeserver).
  const bot: Record<string, string> = {
    PINGBOARD_HOMESERVER_URL: 'https://x.org',
    PINGBOARD_BOT_USER_ID: '@bot:x.org',
    PINGBOARD_BOT_ACCESS_TOKEN: 't',
  };
  const read = new Set<string>();
  const env = new Proxy(
    { ...bot },
    {
      get(target, name) {
        if (typeof name === 'string') read.add(name);
        return Reflect.get(target, name);
      },
    },
  );
  loadConfig(env);
  read.delete('PINGBOARD_CONFIG');
  t.strictSame([...read].sort(), SETTINGS.map((s) => s.env).sort(), 'the variables read');
  t.equal(new Set(SETTINGS.map((s) => s.key)).size, SETTINGS.length, 'no key listed twice');

  for (const { env: name, key } of SETTINGS) {
    // No setting takes an object: the file's value is refused under its key...
    const file = configFile({ [key]: {} });
    const others = { ...bot };
    delete others[name];
    t.match(messageOf(others, file), new RegExp(`^${file}: ${key}\\b`), `${key} is read from the file`);
    // ...unless its variable is set, which wins: the two are one setting.
    t.notMatch(messageOf({ ...others, [name]: 'x' }, file) ?? '', file, `${name} takes the place of ${key}`);
  }
});
