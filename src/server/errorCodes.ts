/**
 * Stable codes of the server's own errors (stores, state backends, paths): what went wrong
 * inside, for the JSON log and for the code that catches them. They are never protocol problem
 * codes: src/server/problem.ts is the one table that says which problem an HTTP request that ends
 * in one of them answers, so a store or a state backend knows nothing of HTTP.
 */
export const SERVER_ERROR_CODES = {
  /** An id, a digest or a key given to a store or a state backend is no safe path component. */
  invalidId: 'E_INVALID_ID',
  /** A blob's body is longer or shorter than the plan says. */
  bodyLength: 'E_BODY_LENGTH',
  /** A blob's body does not hash to the SHA-256 it is stored under. */
  bodyDigest: 'E_BODY_DIGEST',
  /** A dock's key pin changed (or was reset) while it was being written or checked. */
  dockKeyPinRace: 'E_DOCK_KEY_PIN_RACE',
  /**
   * An intact blob (its bytes hash to its name) is not the length a stored record's plan gives it:
   * the record was altered at rest, and slicing by it would serve other bytes.
   */
  storedLength: 'E_STORED_LENGTH',
} as const;
