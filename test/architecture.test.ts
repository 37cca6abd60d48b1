// The house as docs/architecture.md describes it: every file of src/ in one
// part of the allowed-imports table, every import one the table allows, and
// no circle between files. The rules are read from the document itself, so
// the document and the check cannot disagree.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  circles,
  importsOf,
  parseRules,
  partOf,
  resolveImport,
  violations,
  type Edge,
} from './helpers/architecture.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');

function table(rows: readonly string[]): string {
  return [
    '# Architecture',
    '',
    '## Which part may import which',
    '',
    '| Part | Files | May import |',
    '|---|---|---|',
    ...rows,
    '',
    '## Invariants',
  ].join('\n');
}

const sourceFiles = (readdirSync(SRC, { recursive: true }) as string[])
  .map((file) => file.split(path.sep).join('/'))
  .filter((file) => file.endsWith('.ts'))
  .sort();

/** Every import between files of src/, with the specifiers that name no file kept apart. */
function sourceEdges(): { edges: Edge[]; unresolved: string[] } {
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const from of sourceFiles) {
    for (const found of importsOf(readFileSync(path.join(SRC, from), 'utf8'))) {
      const to = resolveImport(from, found.specifier);
      if (to === undefined) continue;
      if (to.startsWith('../') || !sourceFiles.includes(to))
        unresolved.push(`${from}:${found.line} imports ${found.specifier}, no file of src/`);
      else edges.push({ ...found, from, to });
    }
  }
  return { edges, unresolved };
}

t.test('the rules are read from docs/architecture.md', async (t) => {
  const parts = parseRules(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
  t.ok(parts.length > 5, `${parts.length} parts`);
  for (const part of parts)
    for (const held of part.paths) {
      const where = path.join(SRC, held);
      t.ok(
        existsSync(where) && statSync(where).isDirectory() === held.endsWith('/'),
        `${part.name}: ${held} is a ${held.endsWith('/') ? 'folder' : 'file'} of src/`,
      );
    }
  const order = parts.map((part) => part.name);
  t.same(
    parts.flatMap((part) =>
      [...part.mayImport.keys()]
        .filter((other) => order.indexOf(other) > order.indexOf(part.name))
        .map((other) => `${part.name} may import ${other}, a later row`),
    ),
    [],
    'a row lists only parts of earlier rows: the table reads from the ground up',
  );
  const partGraph = new Map(
    parts.map((part) => [part.name, [...part.mayImport.keys()].filter((n) => n !== part.name)]),
  );
  t.same(circles(partGraph), [], 'the table allows no circle between parts');
});

t.test('src/ keeps to the table', async (t) => {
  const parts = parseRules(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
  t.same(
    sourceFiles.filter((file) => !partOf(parts, file)),
    [],
    'every file of src/ is in a part (a new folder gets a row first)',
  );
  const { edges, unresolved } = sourceEdges();
  t.ok(edges.length > 100, `${edges.length} imports between files of src/`);
  t.ok(
    edges.some((edge) => edge.from === 'main.ts' && edge.to === 'start.ts'),
    "main.ts's import() of start.ts is among them",
  );
  t.same(unresolved, [], 'every relative import names a file of src/');
  t.same(violations(parts, edges), [], 'no import the table forbids');
  const graph = new Map<string, string[]>();
  for (const edge of edges) graph.set(edge.from, [...(graph.get(edge.from) ?? []), edge.to]);
  t.same(circles(graph), [], 'no circle between files, type imports included');
});

t.test('an import the table does not list, or beyond "(types)", is named', async (t) => {
  const parts = parseRules(
    table([
      '| ground | `errors.ts` | ground |',
      '| stats | `stats/` | ground |',
      '| bot | `bot/`, `bot-helper.ts` | stats (types), ground |',
      '| http | `http/` | stats, ground |',
    ]),
  );
  t.equal(partOf(parts, 'bot-helper.ts')?.name, 'bot', 'a file named in a row');
  t.equal(partOf(parts, 'stats/deep/x.ts')?.name, 'stats', 'a file in a folder of a row');
  t.equal(partOf(parts, 'other.ts'), undefined, 'a file no row names');
  const edge = (from: string, to: string, typeOnly = false): Edge => ({ from, to, specifier: '', typeOnly, line: 3 });
  t.same(
    violations(parts, [
      edge('stats/a.ts', 'errors.ts'),
      edge('stats/a.ts', 'stats/b.ts'),
      edge('bot/a.ts', 'stats/a.ts', true),
      edge('bot/a.ts', 'stats/a.ts'),
      edge('stats/a.ts', 'http/app.ts', true),
      edge('http/app.ts', 'bot/a.ts', true),
    ]),
    [
      'bot/a.ts:3 imports stats/a.ts: bot may import stats for types only',
      'stats/a.ts:3 imports http/app.ts: stats may not import http',
      'http/app.ts:3 imports bot/a.ts: http may not import bot',
    ],
  );
});

t.test('a table the check cannot read fails with the row it could not read', async (t) => {
  t.throws(() => parseRules('# Architecture\n'), { message: 'no "## Which part may import which" section' });
  t.throws(() => parseRules(table([]).replace('| May import |', '| Imports |')), {
    message: /must have the columns Part \| Files \| May import/,
  });
  t.throws(() => parseRules(table([])), { message: /has no rows/ });
  t.throws(() => parseRules(table(['| stats | stats/ | ground |', '| ground | `errors.ts` | ground |'])), {
    message: 'row 1 (stats): expected paths under src/ in backticks, got "stats/"',
  });
  t.throws(() => parseRules(table(['| stats | `stats/` | ground, samples! |', '| ground | `errors.ts` | ground |'])), {
    message: `row 1 (stats): expected a part's name, "(types)" after it or not, got "samples!"`,
  });
  t.throws(() => parseRules(table(['| stats | `stats/` | ground | extra |'])), {
    message: 'row 1 (stats): expected 3 cells, got 4',
  });
  t.throws(() => parseRules(table(['| stats | `stats/` | samples |'])), {
    message: 'stats may import samples, which no row defines',
  });
  t.throws(() => parseRules(table(['| stats | `stats/` | stats |', '| stats | `x/` | stats |'])), {
    message: 'part stats has two rows',
  });
  t.throws(() => parseRules(table(['| stats | `stats/` | stats |', '| other | `stats/` | other |'])), {
    message: 'stats/ is in both stats and other',
  });
});

t.test('imports are read as Node runs them', async (t) => {
  const text = [
    "import t from 'tap';",
    "import type { Db } from '../db/database.ts';",
    'import {',
    '  one,',
    '  type Two,',
    "} from './one.ts';",
    "export { three } from './three.ts';",
    "export type { Four } from './four.ts';",
    "export * from './five.ts';",
    "import './side-effect.ts';",
    '// a comment: import("./not-an-import.ts")',
    "const six = await import('./six.ts');",
    "const text = 'not from here';",
  ].join('\n');
  t.same(importsOf(text), [
    { specifier: 'tap', typeOnly: false, line: 1 },
    { specifier: '../db/database.ts', typeOnly: true, line: 2 },
    { specifier: './one.ts', typeOnly: false, line: 3 },
    { specifier: './three.ts', typeOnly: false, line: 7 },
    { specifier: './four.ts', typeOnly: true, line: 8 },
    { specifier: './five.ts', typeOnly: false, line: 9 },
    { specifier: './side-effect.ts', typeOnly: false, line: 10 },
    { specifier: './six.ts', typeOnly: false, line: 12 },
  ]);
  t.throws(() => importsOf('const name = "x";\nawait import(name);'), {
    message: 'line 2: import() of something other than a string literal cannot be checked',
  });
  t.equal(resolveImport('http/routes/api.ts', '../../stats/windows.ts'), 'stats/windows.ts');
  t.equal(resolveImport('main.ts', './start.ts'), 'start.ts');
  t.equal(resolveImport('main.ts', 'node:fs'), undefined, 'a node: module is not a file of src/');
});

t.test('a circle is named as a path that ends where it began', async (t) => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts', 'd.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', []],
    ['e.ts', ['e.ts']],
    ['f.ts', ['d.ts']],
  ]);
  t.same(circles(graph).sort(), [
    ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
    ['e.ts', 'e.ts'],
  ]);
  t.same(circles(new Map([['a.ts', ['b.ts']]])), [], 'a line is no circle');
});
