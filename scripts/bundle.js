// Bundles the CLI into dist/tsbuild.cjs (see bin/bundle.cjs), then writes its code cache.
// Whitespace and syntax are minified, names kept: a stack trace still names its functions.
// commander loads node:child_process at its start for external subcommands, which tsbuild has
// none of; loading it then (with net, dgram and their streams) cost every command ~3 ms, so the
// bundle's commander gets it on first use.
import { build } from 'esbuild';

const lazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!text.includes(eager)) throw new Error(`${args.path}: its require of node:child_process has changed; update scripts/bundle.js`);
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: text.replace(eager, lazy), loader: 'js' };
    });
  },
};

await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: 'dist/tsbuild.cjs',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  define: { 'import.meta.url': '__tsbuild_url' },
  banner: { js: "const __tsbuild_url = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyChildProcess],
});

// esbuild's __toCommonJS copies every export of an ES module into a fresh object at each require
// of it: dockerfile-ast requires vscode-languageserver-types (hundreds of exports) from a dozen of
// its files, ~4 ms of every build's start. One object per module, as Node's require cache gives.
{
  const { readFile, writeFile } = await import('node:fs/promises');
  const file = 'dist/tsbuild.cjs';
  const text = await readFile(file, 'latin1');
  const copying = '__toCommonJS=mod=>__copyProps(__defProp({},"__esModule",{value:!0}),mod);';
  if (!text.includes(copying)) throw new Error(`${file}: esbuild's __toCommonJS has changed; update scripts/bundle.js`);
  const cached = '__toCommonJS=(seen=>mod=>{let cjs=seen.get(mod);return cjs||seen.set(mod,cjs=__copyProps(__defProp({},"__esModule",{value:!0}),mod)),cjs})(new WeakMap);';
  // likewise __toESM, which wraps a CommonJS module (node:path from 49 modules) afresh at each import
  const wrapping = '__toESM=(mod,isNodeMode,target)=>(target=';
  if (!text.includes(wrapping)) throw new Error(`${file}: esbuild's __toESM has changed; update scripts/bundle.js`);
  const once = '__toESM=((seen,wrap)=>(mod,isNodeMode)=>{if(mod==null||typeof mod!="object"&&typeof mod!="function")return wrap(mod,isNodeMode);let byMode=seen.get(mod);byMode||seen.set(mod,byMode=[]);let k=isNodeMode?1:0;return byMode[k]||(byMode[k]=wrap(mod,isNodeMode))})(new WeakMap,(mod,isNodeMode,target)=>(target=';
  const at = text.indexOf(wrapping);
  const end = text.indexOf(',__toCommonJS=', at);
  if (end < 0) throw new Error(`${file}: esbuild's __toESM is no longer followed by __toCommonJS; update scripts/bundle.js`);
  const wrapped = `${text.slice(0, at)}${once}${text.slice(at + wrapping.length, end)})${text.slice(end)}`;
  await writeFile(file, wrapped.replace(copying, cached), 'latin1');
}
await import('./code-cache.js');
