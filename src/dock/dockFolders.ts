/**
 * Destinations the dock's own folders must never be: whatever is written inside the bays is a
 * file on a docked camera's card (the next scan ingests it as evidence the camera never recorded),
 * and the state folder holds the journal, the keys and the receipts archive. Every command that
 * writes where the user says (`quarantine export --to`) asks here.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { isInside } from '../protocol/cameraStorage/index.js';

/** The path with its longest existing ancestor resolved through symbolic links (the rest may not exist yet). */
export function realPathOf(path: string): string {
  let head = resolve(path);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...rest.reverse());
    } catch {
      const parent = dirname(head);
      if (parent === head) return join(head, ...rest.reverse());
      rest.push(basename(head));
      head = parent;
    }
  }
}

/** True when `path` is `folder` or inside it (both already real paths). */
function within(path: string, folder: string): boolean {
  return path === folder || isInside(folder, path);
}

/**
 * Refuse (UsageError, exit 2) a destination inside the bays or the state folder, or one that
 * holds them (writing there would put files beside them, and a later `rm -r` takes them too).
 * `what` names the flag in the message.
 */
export function refuseInsideDockFolders(destination: string, folders: { bays?: string; stateDir?: string }, what: string): void {
  const dest = realPathOf(destination);
  for (const [name, folder] of [['bays', folders.bays], ['state folder', folders.stateDir]] as const) {
    if (folder === undefined) continue;
    const real = realPathOf(folder);
    if (within(dest, real)) throw new UsageError(`${what} ${destination} is inside the dock's ${name} ${folder}: ${name === 'bays' ? 'the dock would ingest what is written there as camera files' : 'it holds the journal and keys'}; choose a folder outside both`, { code: 'E_INSIDE_DOCK_FOLDER' });
  }
}
