/**
 * What every program's Prometheus metrics share (prom-client): one registry per instance (several
 * docks or servers in one process, as in the demo and the tests, do not share counters), the
 * process metrics prom-client collects (CPU, memory, event loop lag, file descriptors), the build
 * (`bodycam_build_info{component,version,node} 1`), the log lines dropped (`bodycam_log_lines_dropped_total`), and the few ways a metric is declared here.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { droppedLogLines } from '../log.js';
import { buildInfo } from './version.js';

export class ProgramMetrics {
  readonly registry = new Registry();

  constructor(component: string) {
    collectDefaultMetrics({ register: this.registry });
    const build = buildInfo();
    this.gauge('bodycam_build_info', 'The running build: always 1, the labels say which.', ['component', 'version', 'node'])
      .set({ component, version: build.version, node: build.node }, 1);
    // The log sink never blocks on a stalled reader: what it drops must show where nobody reads the log.
    this.series('counter', 'bodycam_log_lines_dropped_total', 'Log lines this process dropped because the log reader did not keep up (a full stderr pipe or log file).', [], () => [[{}, droppedLogLines()]]);
  }

  protected counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  protected gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** A gauge read at scrape time; `undefined` leaves it as it was (nothing to read yet). */
  protected gaugeReading(name: string, help: string, read: () => number | undefined): Gauge {
    return new Gauge({ name, help, registers: [this.registry], collect() { const value = read(); if (value !== undefined) this.set(value); } });
  }

  /** A labelled metric whose series are all rewritten at scrape time (a bay's state, refusals by cap). */
  protected series(kind: 'gauge' | 'counter', name: string, help: string, labelNames: string[], read: () => Iterable<[Record<string, string>, number]>): void {
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      for (const [labels, value] of read()) {
        if (this instanceof Gauge) this.set(labels, value); else this.inc(labels, value);
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames, registers: [this.registry], collect });
    else new Counter({ name, help, labelNames, registers: [this.registry], collect });
  }

  /** The Prometheus text exposition (0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
