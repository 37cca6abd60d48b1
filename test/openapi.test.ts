// The OpenAPI description at /docs/json: a valid document, listing every
// route the app serves; and every route's actual responses, on both engines,
// match the schemas the document gives for them.
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import t from 'tap';
import type { App } from '../src/http/app.ts';
import { OPENAPI_JSON_PATH } from '../src/http/openapi.ts';
import { forEachEngine } from './helpers/database.ts';
import { freezeClosedWeek, HOSTILE_SERVER, OPERATOR_TOKEN, OTHER_ROOM, pageApp, seedPages } from './helpers/pages.ts';
import { ROOM } from './helpers/samples.ts';

interface Operation {
  readonly summary?: string;
  readonly parameters?: readonly {
    readonly in: string;
    readonly name: string;
    readonly required?: boolean;
    readonly schema?: { readonly default?: unknown };
  }[];
  readonly responses: Record<string, { readonly content?: Record<string, { readonly schema: object }> }>;
}

/** The parts of the document these tests read. */
interface Document {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, Operation>>;
}

/** Every method and path the app routes (from fastify's route tree), in OpenAPI's `{param}` form; HEAD is implied by GET. */
function routesOf(app: App): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)(?:├── |└── )(\S.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + match[2]!;
    stack.push(path);
    for (const method of match[3]?.split(', ') ?? []) {
      if (method !== 'HEAD') routes.push(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes.sort();
}

function documentedRoutes(doc: Document): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

t.test("the document validates and lists every route except the viewer's own", async (t) => {
  const { openTestDatabase } = await import('./helpers/database.ts');
  const database = await openTestDatabase('pglite');
  t.teardown(() => database.destroy());
  const app = await pageApp(database, { operator: true });
  const res = await app.inject(OPENAPI_JSON_PATH);
  t.equal(res.statusCode, 200);
  const doc = res.json() as Document;
  t.equal(doc.openapi, '3.1.0');
  await t.resolves(SwaggerParser.validate(structuredClone(res.json())), 'a valid OpenAPI 3.1 document');
  const served = routesOf(app).filter((route) => !route.startsWith('GET /docs'));
  t.same(documentedRoutes(doc), served, 'every route, and only routes that exist');
  for (const required of [
    'GET /',
    'GET /servers/{server}',
    'GET /leaderboard.md',
    'GET /leaderboard.json',
    'GET /api/v1/weeks',
    'GET /metrics',
  ]) {
    t.ok(served.includes(required), `serves and documents ${required}`);
  }
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      t.ok(operation.summary, `${method.toUpperCase()} ${path} has a summary`);
      t.ok(
        operation.responses['200']?.content ?? operation.responses['204'],
        `${method.toUpperCase()} ${path} describes its success`,
      );
      for (const parameter of (operation.parameters ?? []).filter((p) => p.schema?.default !== undefined)) {
        t.notOk(
          parameter.required,
          `${method.toUpperCase()} ${path}: ${parameter.name} has a default, so it is optional`,
        );
      }
    }
  }
  t.match((await app.inject('/docs/yaml')).body, /^openapi: 3\.1\.0/m);
  const viewer = await app.inject('/docs');
  t.equal(viewer.statusCode, 200);
  t.match(viewer.headers['content-security-policy'], "default-src 'none'");
  t.notMatch(viewer.body, /(src|href)="https?:/, "the viewer's assets are served here");
});

forEachEngine(t, (t, database) => {
  t.test("every route's responses match the documented schemas", async (t) => {
    await seedPages(database);
    const app = await pageApp(database, { operator: true });
    const doc = (await SwaggerParser.dereference((await app.inject(OPENAPI_JSON_PATH)).json())) as unknown as Document;
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const room = encodeURIComponent(ROOM);
    await freezeClosedWeek(database); // so /api/v1/weeks lists one
    const requests: [string, string, number][] = [
      ['/', '/', 200],
      ['/', '/?week=2026-W46', 200],
      ['/', '/?week=bad', 400],
      ['/', '/?room=%21nowhere%3Aexample.org', 404],
      ['/servers/{server}', '/servers/neko.dev', 200],
      ['/servers/{server}', `/servers/${encodeURIComponent(HOSTILE_SERVER)}?room=${encodeURIComponent(ROOM)}`, 200],
      ['/servers/{server}', '/servers/never.example', 404],
      ['/leaderboard.md', '/leaderboard.md', 200],
      ['/leaderboard.md', '/leaderboard.md?limit=0', 400],
      ['/leaderboard.json', '/leaderboard.json?week=2026-W46', 200],
      ['/leaderboard.json', `/leaderboard.json?room=${encodeURIComponent(OTHER_ROOM)}`, 200],
      ['/leaderboard.json', '/leaderboard.json?days=900', 400],
      ['/rooms/{roomId}/stats.json', `/rooms/${room}/stats.json`, 200],
      ['/rooms/{roomId}/stats.json', '/rooms/%21nowhere%3Aexample.org/stats.json', 404],
      ['/rooms/{roomId}/stats.raw.json', `/rooms/${room}/stats.raw.json`, 200],
      ['/rooms/{roomId}/stats', `/rooms/${room}/stats`, 200],
      ['/api/v1/weeks', '/api/v1/weeks', 200],
      ['/api/v1/weeks/{week}', '/api/v1/weeks/2026-W46', 200],
      ['/api/v1/weeks/{week}', '/api/v1/weeks/2026-W40', 404],
      ['/api/v1/servers/{server}', '/api/v1/servers/neko.dev?weeks=3', 200],
      ['/api/v1/servers/{server}', '/api/v1/servers/bad%7Cname', 400],
      ['/api/v1/matrix', '/api/v1/matrix?week=2026-W46', 200],
      ['/api/v1/matrix', '/api/v1/matrix?week=2026-W46&days=2', 400],
      ['/healthz', '/healthz', 200],
      ['/metrics', '/metrics', 200],
    ];
    const operator = { authorization: `Bearer ${OPERATOR_TOKEN}` };
    // The operator's routes, in an order that leaves each something to act on.
    type Exchange = [
      path: string,
      url: string,
      method: 'GET' | 'PUT' | 'DELETE' | 'POST',
      payload: object | undefined,
      headers: Record<string, string>,
      status: number,
    ];
    const operatorRequests: Exchange[] = [
      ['/api/v1/admin/exclusions', '/api/v1/admin/exclusions', 'GET', undefined, {}, 401],
      [
        '/api/v1/admin/exclusions/{server}',
        '/api/v1/admin/exclusions/neko.dev',
        'PUT',
        { reason: 'testing' },
        operator,
        200,
      ],
      ['/api/v1/admin/exclusions', '/api/v1/admin/exclusions', 'GET', undefined, operator, 200],
      [
        '/api/v1/admin/exclusions/{server}',
        '/api/v1/admin/exclusions/bad%7Cname',
        'PUT',
        { reason: 'x' },
        operator,
        400,
      ],
      [
        '/api/v1/admin/weeks/{week}/refreeze',
        '/api/v1/admin/weeks/2026-W46/refreeze',
        'POST',
        { reason: 'neko.dev excluded' },
        operator,
        200,
      ],
      [
        '/api/v1/admin/weeks/{week}/refreeze',
        '/api/v1/admin/weeks/2099-W01/refreeze',
        'POST',
        { reason: 'too early' },
        operator,
        400,
      ],
      ['/api/v1/admin/exclusions/{server}', '/api/v1/admin/exclusions/neko.dev', 'DELETE', undefined, operator, 204],
      ['/api/v1/admin/exclusions/{server}', '/api/v1/admin/exclusions/neko.dev', 'DELETE', undefined, operator, 404],
      [
        '/api/v1/admin/pings/{eventId}',
        `/api/v1/admin/pings/${encodeURIComponent('$nk1')}`,
        'DELETE',
        undefined,
        operator,
        200,
      ],
      [
        '/api/v1/admin/pings/{eventId}',
        `/api/v1/admin/pings/${encodeURIComponent('$nk1')}`,
        'DELETE',
        undefined,
        operator,
        404,
      ],
    ];
    const exercised = new Set<string>();
    const all: Exchange[] = [
      ...requests.map(([path, url, status]): Exchange => [path, url, 'GET', undefined, {}, status]),
      ...operatorRequests,
    ];
    for (const [path, url, method, payload, headers, expected] of all) {
      const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
      t.equal(res.statusCode, expected, `${method} ${url}: ${expected}`);
      const status = String(res.statusCode);
      const type = String(res.headers['content-type']).split(';')[0]!;
      const response = doc.paths[path]?.[method.toLowerCase()]?.responses[status];
      if (status === '204' && response) {
        t.equal(res.body, '', `${method} ${url}: 204 without a body`);
        exercised.add(`${method} ${path}`);
        continue;
      }
      const media = response?.content?.[type];
      if (!media) {
        t.fail(`${method} ${url}: ${status} ${type} is not documented`);
        continue;
      }
      const body = type === 'application/json' ? res.json() : res.body;
      const valid = ajv.validate(media.schema, body);
      t.ok(valid, `${method} ${url}: ${status} ${type} matches its schema`, { errors: ajv.errors });
      exercised.add(`${method} ${path}`);
    }
    const accept = await app.inject({ url: `/rooms/${room}/stats`, headers: { accept: 'application/json' } });
    t.ok(
      ajv.validate(
        doc.paths['/rooms/{roomId}/stats']!['get']!.responses['200']!.content!['application/json']!.schema,
        accept.json(),
      ),
      'stats as JSON',
    );
    const leaderboardSchema =
      doc.paths['/leaderboard.json']!['get']!.responses['200']!.content!['application/json']!.schema;
    t.notOk(ajv.validate(leaderboardSchema, { rows: 'not rows' }), 'the schemas do reject a wrong body');
    t.same([...exercised].sort(), documentedRoutes(doc), 'every documented route was checked');
  });
});
