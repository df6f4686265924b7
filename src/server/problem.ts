/**
 * A request that ends in an RFC 9457 problem. Routes throw ProblemError (one class for both sides
 * of the wire: src/protocol/problems.ts); the app's one error handler turns it (and fastify's own
 * errors) into application/problem+json with the stable `code` from the same table.
 */
export { isProblemCode, ProblemError } from '../protocol/problems.js';
