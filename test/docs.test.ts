// The documentation as a reader meets it: README.md stays a short front door,
// no relative link leads nowhere, and the configuration reference lists
// exactly the settings the code reads.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, SETTINGS } from '../src/config.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = path.join(ROOT, 'docs');
const pages = [
  'README.md',
  ...readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join('docs', name)),
];

/** Markdown without its code: links and headings in code are text, not links and headings. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as dashes, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = heading!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

t.test('README.md is a front door, under 12 KB', async (t) => {
  const size = statSync(path.join(ROOT, 'README.md')).size;
  t.ok(size < 12 * 1024, `README.md is ${size} bytes`);
});

t.test('every relative link of README.md and docs/ leads to a file and heading that exist', async (t) => {
  t.ok(pages.length > 1, 'docs/ has pages');
  for (const page of pages) {
    const text = readFileSync(path.join(ROOT, page), 'utf8');
    for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue;
      const [file = '', anchor] = target!.split('#');
      const resolved =
        file === ''
          ? path.join(ROOT, page)
          : path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(file));
      t.ok(existsSync(resolved), `${page}: ${target} names a file that exists`);
      if (anchor !== undefined && existsSync(resolved)) {
        t.ok(
          anchors(readFileSync(resolved, 'utf8')).has(anchor),
          `${page}: ${target} names a heading of ${path.relative(ROOT, resolved)}`,
        );
      }
    }
  }
});

t.test('docs/configuration.md lists exactly the settings src/config.ts reads', async (t) => {
  const text = readFileSync(path.join(DOCS, 'configuration.md'), 'utf8');
  const rows = [...text.matchAll(/^\| `([A-Z_]+)` \| `([a-z_]+)` \|/gm)].map(([, env, key]) => `${env} ${key}`);
  t.equal(new Set(rows).size, rows.length, 'no setting listed twice');
  t.strictSame(rows.sort(), SETTINGS.map(({ env, key }) => `${env} ${key}`).sort());
});

t.test('each default docs/configuration.md names is the one the code uses', async (t) => {
  const text = readFileSync(path.join(DOCS, 'configuration.md'), 'utf8');
  // With a bot, so its settings are read too.
  const bot = {
    PINGBOARD_HOMESERVER_URL: 'https://x.org',
    PINGBOARD_BOT_USER_ID: '@bot:x.org',
    PINGBOARD_BOT_ACCESS_TOKEN: 't',
  };
  const defaults = loadConfig(bot);
  let checked = 0;
  for (const [, env, value] of text.matchAll(/^\| `([A-Z_]+)` \| `[a-z_]+` \| `([^`]+)` \|/gm)) {
    // Setting the documented default explicitly must change nothing.
    t.strictSame(loadConfig({ ...bot, [env!]: value }), defaults, `${env}: ${value}`);
    checked++;
  }
  t.ok(checked >= 20, `${checked} defaults checked`);
});
