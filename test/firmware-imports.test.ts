/** firmware/ is pure: nothing from Node (`node:*` or bare builtins) and nothing from targets/. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

const root = join(__dirname, '..', 'firmware');
const builtins = new Set(builtinModules);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('firmware imports nothing from node:* or targets/', () => {
  const bad: string[] = [];
  const all = files(root);
  assert.ok(all.length > 5, 'firmware files found');
  for (const f of all) {
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1];
      if (spec.startsWith('node:') || builtins.has(spec) || spec.includes('targets/')) bad.push(`${f}: ${spec}`);
    }
  }
  assert.equal(bad, []);
});

test('firmware uses no Node globals (Buffer, process, setTimeout)', () => {
  const bad: string[] = [];
  for (const f of files(root)) {
    const src = readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const g of ['Buffer.', 'process.', 'setTimeout(', 'setInterval(', 'require(']) if (src.includes(g)) bad.push(`${f}: ${g}`);
  }
  assert.equal(bad, []);
});

test.run();
