// The spill directory (src/spill.ts): files of this process's own, the
// directories of dead processes swept, files gone taken for gone in order.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SpillDirectory, type SpilledBytes } from '../src/spill.ts';
import type { Test } from './helpers/database.ts';

function parentDirectory(t: Test): string {
  const parent = mkdtempSync(path.join(tmpdir(), 'spill-test-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  return parent;
}

t.test("a directory of this process's own; those of this machine's dead processes are removed", async (t) => {
  const parent = parentDirectory(t);
  const live = new SpillDirectory(parent, 1 << 20, (err) => t.fail(String(err)), 0);
  const namespace = /\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0];
  const here = `pingboard-spill-${hostname()}-${namespace}-`;
  // A PID above Linux's largest, and this process's PID with another start: a process that reused the PID.
  const dead = `${here}4194305-123-aaaaaa`;
  const reused = `${here}${process.pid}-1-bbbbbb`;
  const kept = {
    "another machine's (a shared directory)": `pingboard-spill-elsewhere.example-${namespace}-1-1-cccccc`,
    "another PID namespace's (a container)": `pingboard-spill-${hostname()}-1-4194305-123-dddddd`,
    "a name this machine's processes do not make (a host named as this one and more, say)": `${here}1-2-3-eeeeee`,
    'what is not a spill directory': 'unrelated',
  };
  for (const name of [dead, reused, ...Object.values(kept)]) mkdirSync(path.join(parent, name));
  writeFileSync(path.join(parent, `${here}4194305-123-ffffff`), 'a file, not a directory');
  const spill = new SpillDirectory(parent, 1 << 20, (err) => t.fail(String(err)), 0);
  const left = readdirSync(parent);
  t.notOk(left.includes(dead), "a dead process's directory is removed");
  t.notOk(left.includes(reused), 'so is one whose PID another process has now');
  for (const [what, name] of Object.entries(kept)) t.ok(left.includes(name), `left: ${what}`);
  t.ok(left.includes(`${here}4194305-123-ffffff`), 'left: a file of such a name');
  t.ok(path.basename(spill.path).startsWith(`${here}${process.pid}-`), 'named as its process');
  t.ok(existsSync(live.path), "a live process's is left");
  t.equal(statSync(spill.path).mode & 0o777, 0o700, 'readable by this user only');
  spill.close();
  live.close();
  t.notOk(existsSync(spill.path), 'removed when closed');
});

t.test(
  'a file found gone has the others looked for once: those gone too are taken for gone, not the rest',
  async (t) => {
    const spill = new SpillDirectory(parentDirectory(t), 1 << 20, (err) => t.fail(String(err)), 0);
    const [a, b, c] = ['a', 'b', 'c'].map((text) => spill.keep(Buffer.from(text))!) as [
      SpilledBytes,
      SpilledBytes,
      SpilledBytes,
    ];
    rmSync(a.path);
    rmSync(b.path);
    t.equal(a.unreadable, false, 'not looked for until a read finds a file gone');
    b.lost();
    t.same([a.unreadable, b.unreadable, c.unreadable], [true, true, false]);
    rmSync(c.path);
    t.equal(c.unreadable, false, 'looked for once a loss, not at every question');
    const d = spill.keep(Buffer.from('d'))!;
    a.lost();
    t.same([c.unreadable, d.unreadable], [true, false], 'and again at the next loss');
  },
);

t.test('its directory removed, a new one is made, and the files of the old one are gone', async (t) => {
  const errors: unknown[] = [];
  const spill = new SpillDirectory(parentDirectory(t), 1 << 20, (err) => errors.push(err), 0);
  const before = spill.keep(Buffer.from('before'))!;
  const first = spill.path;
  rmSync(first, { recursive: true });
  const after = spill.keep(Buffer.from('after'))!;
  t.not(spill.path, first, 'a new name, not the old one made again');
  t.equal(statSync(spill.path).mode & 0o777, 0o700);
  t.equal(before.unreadable, true, 'the old files are taken for gone');
  t.equal(after.unreadable, false);
  t.same(errors, [], 'no error to report');
  spill.close();
});

t.test('past its budget, and below its smallest size, a text is not kept', async (t) => {
  const spill = new SpillDirectory(parentDirectory(t), 10, (err) => t.fail(String(err)), 4);
  t.equal(spill.keep(Buffer.from('abc')), undefined, 'below the smallest size');
  t.not(spill.keep(Buffer.from('abcdefgh')), undefined, 'within the budget');
  t.equal(spill.keep(Buffer.from('abcd')), undefined, 'past the budget');
  t.equal(spill.bytes, 8);
  spill.close();
});

t.test('an appender keeps texts one after another in one file, each as its range', async (t) => {
  const errors: unknown[] = [];
  const spill = new SpillDirectory(parentDirectory(t), 20, (err) => errors.push(err), 0);
  const append = spill.appender(3);
  const a = append(Buffer.from('abcd'))!;
  const b = append(Buffer.from('efg'))!;
  t.equal(append(Buffer.from('hi')), undefined, 'below its smallest size');
  t.same([a.start, a.end, b.start, b.end], [0, 4, 4, 7], 'one after another');
  t.equal(b.file, a.file, 'in one file');
  t.equal(readFileSync(a.file.path, 'utf8'), 'abcdefg');
  t.equal(a.file.length, 7);
  t.equal(spill.bytes, 7, 'counted');
  t.equal(append(Buffer.from('0123456789abcd')), undefined, 'past the budget');

  // Its file gone: the next text starts a new one.
  rmSync(a.file.path);
  a.file.lost();
  const c = append(Buffer.from('xyz'))!;
  t.not(c.file, a.file, 'a new file');
  t.same([c.start, c.end], [0, 3]);
  t.equal(readFileSync(c.file.path, 'utf8'), 'xyz');

  // Removed with nobody knowing yet: the next text is not written into a file made anew under its name,
  // where the ranges before it would read other bytes.
  rmSync(c.file.path);
  const d = append(Buffer.from('def'))!;
  t.not(d.file, c.file, 'a new file');
  t.equal(existsSync(c.file.path), false, 'the old name not made again');
  t.equal(c.file.unreadable, true, 'the old file taken for gone');
  t.equal(readFileSync(d.file.path, 'utf8'), 'def');

  // A write that fails (its directory replaced by a file) is reported once, and the text not taken.
  rmSync(spill.path, { recursive: true });
  writeFileSync(spill.path, 'not a directory');
  t.equal(append(Buffer.from('uvw')), undefined, 'not taken');
  t.equal(append(Buffer.from('rst')), undefined, 'not taken');
  t.equal(errors.length, 1, 'reported once');
  rmSync(spill.path, { force: true });
});
