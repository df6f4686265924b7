/**
 * The one rule for a host and a port, wherever a program takes one (the server's listen address,
 * the dock's status port, the host of an endpoint URL): `--validate` and the start refuse the same.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { UsageError } from '../errors.js';

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** An IPv4 or IPv6 address, or a DNS host name (letters, digits, '-' and '.', labels of 1-63). */
export function isValidHost(host: string): boolean {
  return isIPv4(host) || isIPv6(host) || HOSTNAME.test(host);
}

/** A port is a whole number 0-65535 (0: the system picks a free one). */
export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** host:port or [v6]:port, both checked; `where` names the setting in the error. */
export function parseHostPort(text: string, where: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const host = match ? match[1] ?? match[2]! : '';
  const port = match ? Number(match[3]) : NaN;
  const bracketed = match?.[1] !== undefined;
  if (!match || !isValidPort(port) || (bracketed ? !isIPv6(host) : !isValidHost(host) || isIPv6(host))) {
    const why = !match ? 'use host:port' : !isValidPort(port) ? `port ${match[3]} is not 0-65535` : `"${host}" is not a host name or IP address (an IPv6 address goes in brackets: [::1]:8443)`;
    throw new UsageError(`invalid ${where} "${text}": ${why}, e.g. 127.0.0.1:8443 or 127.0.0.1:0`, { code: 'E_CONFIG_INVALID' });
  }
  return { host, port };
}
