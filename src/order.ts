// One order for names and keys everywhere: code points, no locale, so lists
// and ties come out the same on every machine.

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
