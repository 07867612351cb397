#!/usr/bin/env node
// Builds the web dashboard (dashboard/src, Preact + TypeScript) into dist/dashboard-ui/: one JS and one
// CSS bundle named by content hash (served as immutable) and index.html referencing them (served
// uncached). Run by `npm run build`, so `npm ci` (through `prepare`) produces it.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist/dashboard-ui');
const assets = path.join(out, 'assets');

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: [path.join(root, 'dashboard/src/main.tsx'), path.join(root, 'dashboard/src/styles.css')],
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: assets,
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const script = outputs.find((file) => /^main-.*\.js$/.test(file));
const style = outputs.find((file) => /^styles-.*\.css$/.test(file));
if (!script || !style) throw new Error(`dashboard build: missing outputs in ${outputs.join(', ')}`);

// No inline script or style: the page works under `script-src 'self'; style-src 'self'`.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Pictor dashboard</title>
<link rel="stylesheet" href="/dashboard/assets/${style}">
<script type="module" src="/dashboard/assets/${script}"></script>
</head>
<body>
<noscript>The Pictor dashboard needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`;
fs.writeFileSync(path.join(out, 'index.html'), html);
console.log(`dashboard: ${path.relative(root, out)} (${script}, ${style})`);
