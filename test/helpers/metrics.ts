/** Reading `/metrics` in tests: Prometheus text parsed into samples, and how much one moved. */
import { expect } from 'vitest';
import type { TestServer } from './server.js';

/** Prometheus text as `name{label="value",…}` (labels sorted) → value. */
export type Samples = Map<string, number>;

export function sampleKey(name: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([label, value]) => `${label}="${value}"`);
  return pairs.length === 0 ? name : `${name}{${pairs.join(',')}}`;
}

export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match?.[1] || match[3] === undefined) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.set(sampleKey(match[1], labels), Number(match[3]));
  }
  return samples;
}

export async function scrape(t: TestServer, headers: Record<string, string> = {}): Promise<Samples> {
  const res = await fetch(`${t.url}/metrics`, { headers });
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(200);
  expect(res.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
  return parseMetrics(text);
}

/** How much a sample moved between two scrapes (absent counts as 0). */
export function moved(before: Samples, after: Samples, name: string, labels: Record<string, string> = {}): number {
  const key = sampleKey(name, labels);
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}

