/**
 * A card's free text (a sidecar's category, officer, agency, trigger, marker labels…) as the
 * server indexes and shows it: at most CARD_TEXT_MAX characters. The camera (or whoever edited
 * the card on a PC) writes these strings, up to the 1 MiB sidecar cap each; kept whole in every
 * summary, facet and list row, 30 such recordings cost the server ~600 MB and every list page
 * 55 MB (ATTACK-s6 B4). The evidence stays byte-exact in the sidecar and the manifest; only the
 * index and the views are cut, and say so with the full length.
 */

export const CARD_TEXT_MAX = 128;

export interface BoundedText {
  /** The text itself when short enough, else its first CARD_TEXT_MAX - 1 characters and "…". */
  text: string;
  /** The full length in characters, only when the text was cut. */
  fullLength?: number;
}

/** At most CARD_TEXT_MAX characters, a fresh copy (never a slice that keeps the whole string alive). */
export function boundCardText(value: string): BoundedText {
  if (value.length <= CARD_TEXT_MAX) return { text: value };
  let end = CARD_TEXT_MAX - 1;
  // Never split a surrogate pair: a lone half would print as U+FFFD.
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  // V8 keeps a slice of a long string as a view of the whole one: copy the characters out.
  return { text: Buffer.from(value.slice(0, end) + '…', 'utf16le').toString('utf16le'), fullLength: value.length };
}

/** The words that follow a cut text wherever it is shown. */
export function truncationNote(fullLength: number, where = 'the sidecar'): string {
  return ` (truncated, ${fullLength} characters: see ${where})`;
}

/** A card's value for a page: bounded, with the note when it was cut. */
export function shownCardText(value: string, where?: string): string {
  const bounded = boundCardText(value);
  return bounded.fullLength === undefined ? bounded.text : bounded.text + truncationNote(bounded.fullLength, where);
}
