// A realistic week of samples, deterministic for a given seed: ping servers
// with Zipf-like activity (a few ping a lot, most rarely), several responders
// per ping, and long-tailed (log-normal) delays with occasional outliers.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Sample } from '../src/samples/sample.ts';
import { sampleToRecord } from '../src/samples/sample.ts';

export interface DatasetOptions {
  readonly servers: number;
  readonly samples: number;
  readonly responders: number;
  readonly roomId: string;
  /** The window ends here; samples spread over the seven days before. */
  readonly end: Date;
  readonly seed: number;
  /**
   * Event IDs as Matrix's rooms have them: `$` and 43 characters of a hash, so
   * each lands anywhere in the primary key, and every answer that lists pings
   * is as long as the real room's. Otherwise short made-up ones (`$bench12`).
   */
  readonly matrixEventIds?: boolean;
}

/** mulberry32: small, fast, good enough for benchmark data. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function* generateSamples(options: DatasetOptions): Generator<Sample> {
  const rand = random(options.seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  // Zipf weights s = 1 over the servers, sampled through the cumulative sum.
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 1; i <= options.servers; i++) {
    total += 1 / i;
    cumulative.push(total);
  }
  const pickServer = () => {
    const target = rand() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // Each server has its own typical delay; each responder adds its own sync delay.
  const serverMedian = Array.from({ length: options.servers }, () => Math.exp(5.5 + 0.8 * normal()));
  const responderOffset = Array.from({ length: options.responders }, () => 20 + rand() * 200);
  const span = 7 * 86_400_000;
  let emitted = 0;
  let ping = 0;
  while (emitted < options.samples) {
    const server = pickServer();
    const pingTs = options.end.getTime() - span + Math.floor(rand() * span);
    ping++;
    const pingEventId = options.matrixEventIds
      ? `$${createHash('sha256').update(`$bench${ping}`).digest('base64url')}`
      : `$bench${ping}`;
    for (let r = 0; r < options.responders && emitted < options.samples; r++) {
      // Most pings are seen by every responder; some responders miss some.
      if (r > 0 && rand() < 0.15) continue;
      const outlier = rand() < 0.01 ? 10 + rand() * 200 : 1;
      const delayMs = Math.round(serverMedian[server]! * Math.exp(0.5 * normal()) * outlier + responderOffset[r]!);
      const name = `hs${server}.example`;
      yield {
        roomId: options.roomId,
        pingEventId,
        pingServer: name,
        pinger: `@user:${name}`,
        responder: `@echo:responder${r}.example`,
        responderServer: `responder${r}.example`,
        delayMs,
        pingTs: new Date(pingTs),
        measuredAt: new Date(Math.min(options.end.getTime(), pingTs + delayMs)),
        source: 'pong',
        rttMs: null,
      };
      emitted++;
    }
  }
}

/** Writes the dataset as NDJSON, the import format. */
export async function writeNdjson(path: string, options: DatasetOptions): Promise<number> {
  const out = createWriteStream(path);
  let lines = 0;
  let buffer = '';
  for (const sample of generateSamples(options)) {
    buffer += `${JSON.stringify(sampleToRecord(sample))}\n`;
    lines++;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
  return lines;
}
