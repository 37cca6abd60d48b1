const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' };

/**
 * Bidirectional embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069): one in a server name or a reason turns the rest of the
 * row around (a name that reads as another's, a reason rendered backwards).
 */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;

/** Escapes text for a web page: as escapeHtml, and each bidi control shown as U+FFFD, so none reorders the page. */
export function escapePageText(text: string): string {
  return escapeHtml(text.replace(BIDI_CONTROLS, '\ufffd'));
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!);
}
