// Builds each Custom UI resource into static/<resource>/build: bundled JS, index.html, CSS, icon.
// `node build.mjs [--out DIR] [--bridge FILE]`: --bridge swaps @forge/bridge (browser tests only).
import * as esbuild from 'esbuild';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const PANEL_CSS = resolve(HERE, '..', 'plugin', 'static');
export const RESOURCES = ['issue-panel', 'page-panel', 'project-settings', 'personal-settings'];

function option(name) {
  const at = process.argv.indexOf(name);
  return at > 0 ? resolve(process.argv[at + 1]) : null;
}

async function cssFiles(dir) {
  // The Connect panels' stylesheets, copied (never forked) so both hosts look the same.
  const found = [];
  let entries = [];
  try { entries = await readdir(dir, { withFileTypes: true }); } catch { return found; }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...await cssFiles(path));
    else if (entry.name.endsWith('.css')) found.push(path);
  }
  return found.sort();
}

function bridgeStub(file) {
  return { name: 'bridge-stub', setup(build) {
    build.onResolve({ filter: /^@forge\/bridge$/ }, () => ({ path: file }));
  } };
}

async function buildResource(name, outRoot, bridge) {
  const out = outRoot ? join(outRoot, name) : join(HERE, 'static', name, 'build');
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, 'css'), { recursive: true });
  await esbuild.build({ entryPoints: [join(HERE, 'static', name, 'main.js')], bundle: true, format: 'iife',
    target: 'es2020', minify: !bridge, outfile: join(out, 'main.js'), logLevel: 'warning',
    plugins: bridge ? [bridgeStub(bridge)] : [] });
  const sheets = [...await cssFiles(PANEL_CSS), join(HERE, 'ui', 'inflow.css')];
  const links = [];
  for (const [i, sheet] of sheets.entries()) {
    const target = `css/${i}-${sheet.split('/').pop()}`;
    await copyFile(sheet, join(out, target));
    links.push(`<link rel="stylesheet" href="${target}">`);
  }
  const html = await readFile(join(HERE, 'static', name, 'index.html'), 'utf8');
  await writeFile(join(out, 'index.html'), html.replace('<!-- inflow:css -->', links.join('\n')));
  await copyFile(join(HERE, 'ui', 'icon.svg'), join(out, 'icon.svg'));
  return relative(process.cwd(), out);
}

const outRoot = option('--out');
const bridge = option('--bridge');
for (const name of RESOURCES) console.log(`built ${await buildResource(name, outRoot, bridge)}`);
