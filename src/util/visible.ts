/**
 * Text from a camera's card (file names, serials, sidecar values) is untrusted: FAT and exFAT allow
 * control bytes in names, and a terminal obeys them (ESC[1A and CR overwrite the line above, so a
 * card could paint "held" over its own "missing" row; OSC sets the window title). Bidirectional
 * overrides and isolates make "gpj.exe.mp4" read "4pm.exe.jpg". Every such character is shown as a
 * visible ⟨U+XXXX⟩ instead, for the terminal and for the console's HTML alike.
 */
const INVISIBLE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/g;
/** The same, line breaks and tabs included: for one table cell or one line of a report. */
const INVISIBLE_OR_BREAK = /[\u0000-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/g;

const shown = (c: string): string => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`;

/** `text` with control, invisible and direction-changing characters made visible; `\n` and `\t` kept unless `oneLine` (a CR is shown: it would let the text overwrite its own line). */
export function visible(text: string, options: { oneLine?: boolean } = {}): string {
  return text.replace(options.oneLine ? INVISIBLE_OR_BREAK : INVISIBLE, shown);
}
