// A strict reader of the Prometheus text exposition format (0.0.4), to check
// /metrics: it throws on anything the format does not allow, including what
// lenient parsers let through (a sample before its TYPE, a bad escape,
// duplicate series, histograms whose buckets are not cumulative or lack +Inf).

interface ParsedSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface ParsedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly samples: ParsedSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // after '{'
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let value = '';
    let j = eq + 2;
    for (; ; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const next = text[++j];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`line ${line}: bad escape \\${next}`);
      } else {
        value += c;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected "," or "}" after a label`);
  }
}

export function parsePrometheusStrict(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, ParsedFamily>();
  const seriesSeen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === '') throw new Error(`line ${line}: empty line`);
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      const family = families.get(name);
      if (kind === 'HELP') {
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${line}: bad escape in HELP`);
        if (family?.help) throw new Error(`line ${line}: second HELP for ${name}`);
        families.set(name, family ? { ...family, help: rest } : { name, help: rest, type: '', samples: [] });
      } else {
        if (!TYPES.has(rest)) throw new Error(`line ${line}: bad type ${rest}`);
        if (family?.type) throw new Error(`line ${line}: second TYPE for ${name}`);
        if (family && family.samples.length > 0) throw new Error(`line ${line}: TYPE after samples of ${name}`);
        families.set(name, { ...(family ?? { name, help: '', samples: [] }), type: rest });
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (!nameMatch) throw new Error(`line ${line}: no metric name`);
    const name = nameMatch[0];
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const valueMatch = /^ (\S+)( -?\d+)?$/.exec(rest);
    if (!valueMatch) throw new Error(`line ${line}: expected " value" after the series`);
    const value = parseValue(valueMatch[1]!, line);
    const familyName = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => families.get(n)?.type);
    const family = familyName === undefined ? undefined : families.get(familyName);
    if (!family) throw new Error(`line ${line}: sample ${name} before its TYPE`);
    if (family.name !== name && family.type !== 'histogram' && family.type !== 'summary')
      throw new Error(`line ${line}: ${name} does not belong to ${family.type} ${family.name}`);
    if (family.type === 'histogram' && name === `${family.name}_bucket` && labels['le'] === undefined)
      throw new Error(`line ${line}: bucket without le`);
    if (family.type === 'histogram' && name === family.name)
      throw new Error(`line ${line}: a histogram has no bare samples`);
    if (family.type === 'counter' && value < 0) throw new Error(`line ${line}: negative counter`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(series)) throw new Error(`line ${line}: duplicate series ${series}`);
    seriesSeen.add(series);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (!family.type) throw new Error(`${family.name}: HELP without TYPE`);
    if (family.type === 'histogram') checkHistogram(family);
  }
  return families;
}

function checkHistogram(family: ParsedFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith('_bucket')) group.buckets.push([parseValue(le!, 0), sample.value]);
    else if (sample.name.endsWith('_sum')) group.sum = sample.value;
    else group.count = sample.value;
  }
  for (const [key, group] of groups) {
    if (group.sum === undefined || group.count === undefined)
      throw new Error(`${family.name}${key}: _sum or _count missing`);
    const last = group.buckets[group.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${family.name}${key}: no le="+Inf" bucket last`);
    if (last[1] !== group.count) throw new Error(`${family.name}${key}: +Inf bucket differs from _count`);
    for (let i = 1; i < group.buckets.length; i++) {
      if (group.buckets[i]![0] <= group.buckets[i - 1]![0])
        throw new Error(`${family.name}${key}: buckets out of order`);
      if (group.buckets[i]![1] < group.buckets[i - 1]![1])
        throw new Error(`${family.name}${key}: buckets not cumulative`);
    }
  }
}
