// The reason an operator gives for an exclusion or a re-freeze. Checked here,
// apart from the controls, so the CLI refuses a bad --reason before it loads
// anything else.
import { InputError } from '../errors.ts';

/** Reasons are shown on pages and in JSON: one line of plain text. */
export const MAX_REASON_LENGTH = 500;

/**
 * Line breaks and terminal escapes have no place in one line of text; nor
 * have bidirectional embeddings, overrides, isolates and marks, which turn
 * the text around it (a reason that reads as something else in the history).
 */
const NOT_PLAIN_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export function checkReason(raw: string): string {
  const reason = raw.trim();
  if (reason === '') throw new InputError('reason', 'a reason is required');
  if (reason.length > MAX_REASON_LENGTH)
    throw new InputError('reason', `at most ${MAX_REASON_LENGTH} characters, got ${reason.length}`);
  if (NOT_PLAIN_TEXT.test(reason))
    throw new InputError('reason', 'control characters, bidirectional controls and line breaks are not allowed');
  return reason;
}
