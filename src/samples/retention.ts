// How old a sample may be and still be kept. The writer, the file import and
// the backfill refuse what retention would delete next, and retention deletes
// what is older: one rule, on the floor that stores samples.

export function retentionCutoff(now: Date, days: number): Date {
  return new Date(now.getTime() - days * 86_400_000);
}
