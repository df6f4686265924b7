import { UsageError } from '../errors.js';

/** Placeholder action for a command whose issue has not landed. */
export function notYetAvailable(name: string): () => never {
  return () => {
    throw new UsageError(`\`bodycam ${name}\` is not yet available in this build`, { code: 'E_NOT_AVAILABLE' });
  };
}
