// Loaded with `--import` into every process of the embedded bench (through
// NODE_OPTIONS, so the process creating a data directory has it too): appends
// the process's peak resident size to the file the bench reads.
import { appendFileSync } from 'node:fs';
import path from 'node:path';

const report = process.env['BENCH_PEAK_RSS_FILE']!;
process.on('exit', () => {
  const script = path.basename(process.argv[1] ?? '');
  // resourceUsage's maxRSS is in KiB.
  appendFileSync(report, `${script} ${Math.round(process.resourceUsage().maxRSS / 1024)}\n`);
});
