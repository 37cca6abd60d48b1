// The import rules of docs/architecture.md as data, and what src/ does
// against them: pure, so the check itself is tested on small made-up cases
// before it is trusted with the real tree.
import path from 'node:path';

/** One row of the table: a part, the files it holds (a path ending in / is a folder), what it may import. */
export interface Part {
  readonly name: string;
  readonly paths: readonly string[];
  /** The parts it may import, each either for anything or for `import type` only. */
  readonly mayImport: ReadonlyMap<string, 'all' | 'types'>;
}

/** One import of one file, as written. */
export interface ImportOf {
  readonly specifier: string;
  readonly typeOnly: boolean;
  readonly line: number;
}

/** An import between two files of src/ (paths relative to src/). */
export interface Edge extends ImportOf {
  readonly from: string;
  readonly to: string;
}

const RULES_HEADING = '## Which part may import which';

/**
 * The allowed-imports table under RULES_HEADING: `| Part | Files | May import |`.
 * Throws, naming the row, on anything it cannot read, so a mistyped table
 * fails the check instead of allowing more than it says.
 */
export function parseRules(markdown: string): Part[] {
  const start = markdown.indexOf(`\n${RULES_HEADING}\n`);
  if (start < 0) throw new Error(`no "${RULES_HEADING}" section`);
  const section = markdown.slice(start + RULES_HEADING.length + 2).split(/\n## /)[0]!;
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, line.endsWith('|') ? -1 : undefined)
        .split('|')
        .map((cell) => cell.trim()),
    );
  const [header, rule, ...body] = rows;
  if (header?.join('|') !== 'Part|Files|May import' || !rule?.every((cell) => /^:?-+:?$/.test(cell)))
    throw new Error(`the table under "${RULES_HEADING}" must have the columns Part | Files | May import`);
  if (body.length === 0) throw new Error(`the table under "${RULES_HEADING}" has no rows`);
  const parts = body.map((cells, index): Part => {
    const where = `row ${index + 1} (${cells[0] ?? ''})`;
    if (cells.length !== 3) throw new Error(`${where}: expected 3 cells, got ${cells.length}`);
    const [name, files, allowed] = cells as [string, string, string];
    if (!/^[a-z][a-z-]*$/.test(name)) throw new Error(`${where}: a part's name is a lower-case word, got "${name}"`);
    const paths = files.split(',').map((file) => file.trim());
    for (const file of paths)
      if (!/^`[\w.-]+(\/[\w.-]+)*\/?`$/.test(file))
        throw new Error(`${where}: expected paths under src/ in backticks, got ${JSON.stringify(file)}`);
    const mayImport = new Map<string, 'all' | 'types'>();
    for (const item of allowed.split(',').map((entry) => entry.trim())) {
      const match = /^([a-z][a-z-]*)( \(types\))?$/.exec(item);
      if (!match) throw new Error(`${where}: expected a part's name, "(types)" after it or not, got "${item}"`);
      mayImport.set(match[1]!, match[2] ? 'types' : 'all');
    }
    return { name, paths: paths.map((file) => file.slice(1, -1)), mayImport };
  });
  const names = new Set<string>();
  for (const part of parts) {
    if (names.has(part.name)) throw new Error(`part ${part.name} has two rows`);
    names.add(part.name);
  }
  for (const part of parts)
    for (const other of part.mayImport.keys())
      if (!names.has(other)) throw new Error(`${part.name} may import ${other}, which no row defines`);
  const owners = new Map<string, string>();
  for (const part of parts)
    for (const file of part.paths) {
      const owner = owners.get(file);
      if (owner) throw new Error(`${file} is in both ${owner} and ${part.name}`);
      owners.set(file, part.name);
    }
  return parts;
}

/** The part holding `file` (relative to src/): the row naming it or, failing that, its nearest folder. */
export function partOf(parts: readonly Part[], file: string): Part | undefined {
  let best: { part: Part; length: number } | undefined;
  for (const part of parts)
    for (const held of part.paths) {
      const holds = held.endsWith('/') ? file.startsWith(held) : file === held;
      if (holds && (!best || held.length > best.length)) best = { part, length: held.length };
    }
  return best?.part;
}

const STATIC_IMPORT = /^[ \t]*(?:import|export)(\s+type)?\s+([\w\s{},*$]*?)\s*from\s*(['"])([^'"\n]+)\3/gm;
const SIDE_EFFECT_IMPORT = /^[ \t]*import\s*(['"])([^'"\n]+)\1/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(?:(['"])([^'"\n]*)\1\s*\))?/g;

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/**
 * Every module `text` imports: `import … from`, `export … from`, a bare
 * `import '…'` and `import('…')`. Only `import type` and `export type` count
 * as type-only: Node keeps `import { type A }` as an import of the module.
 * Throws on an `import()` of anything but a string literal, which no check
 * could follow.
 */
export function importsOf(text: string): ImportOf[] {
  const found: ImportOf[] = [];
  for (const match of text.matchAll(STATIC_IMPORT))
    found.push({ specifier: match[4]!, typeOnly: match[1] !== undefined, line: lineAt(text, match.index) });
  for (const match of text.matchAll(SIDE_EFFECT_IMPORT))
    found.push({ specifier: match[2]!, typeOnly: false, line: lineAt(text, match.index) });
  for (const match of text.matchAll(DYNAMIC_IMPORT)) {
    const line = lineAt(text, match.index);
    const lineText = text.split('\n')[line - 1]!.trim();
    if (lineText.startsWith('//') || lineText.startsWith('*')) continue;
    if (match[2] === undefined)
      throw new Error(`line ${line}: import() of something other than a string literal cannot be checked`);
    found.push({ specifier: match[2], typeOnly: false, line });
  }
  return found.sort((a, b) => a.line - b.line);
}

/** The src/-relative file a relative specifier of `from` names; undefined for a package or node: module. */
export function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
}

/** What the rules forbid, one line each: an import from a part not listed, or beyond "(types)". */
export function violations(parts: readonly Part[], edges: readonly Edge[]): string[] {
  const found: string[] = [];
  for (const edge of edges) {
    const from = partOf(parts, edge.from);
    const to = partOf(parts, edge.to);
    if (!from || !to || from === to) continue;
    const allowed = from.mayImport.get(to.name);
    const at = `${edge.from}:${edge.line} imports ${edge.to}`;
    if (allowed === undefined) found.push(`${at}: ${from.name} may not import ${to.name}`);
    else if (allowed === 'types' && !edge.typeOnly)
      found.push(`${at}: ${from.name} may import ${to.name} for types only`);
  }
  return found;
}

/** Each circle of `graph`, as one path through it that ends where it began (strongly connected components, Tarjan). */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.includes(node)) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => pathAround(graph, new Set(component)));
}

/** A shortest path from the component's first member (in name order) back to itself, inside the component. */
function pathAround(graph: ReadonlyMap<string, readonly string[]>, component: ReadonlySet<string>): string[] {
  const start = [...component].sort()[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const way = [node];
        while (way[0] !== start) way.unshift(cameFrom.get(way[0]!)!);
        return [...way, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}
