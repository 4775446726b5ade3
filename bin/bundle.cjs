// The CLI is bundled into one CommonJS file (dist/tsbuild.cjs) and compiled with V8's code cache
// (dist/tsbuild.cjs.cache, written by `npm run build`): one file to read instead of a few hundred,
// and no parsing or compiling of it, make every command start sooner. V8 itself refuses a cache
// from another Node version, but checks only the source's length, and not its own data (damaged
// data it accepts crashes the process without a word, or runs wrong code). So the cache is
// [sha256 of the exact text it was compiled from][the bundle file's size, mtime, inode and device
// when it was][crc32 of the V8 data][V8 data], and is used only for that text, and only when the
// data is whole. The text is hashed again only when the file is not the one the cache was made
// from (a copy, an edit): a start neither hashes a megabyte of JavaScript to find it unchanged nor
// loads node:crypto to do so.
'use strict';
const { readFileSync, statSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');
const { crc32 } = require('node:zlib');

const bundleFile = path.join(__dirname, '..', 'dist', 'tsbuild.cjs');
const cacheFile = `${bundleFile}.cache`;
const HEADER = 32 + 32 + 4;

/** The bundle file as it is on disk: its size, mtime (ns), inode and device, 8 bytes each. */
function fileIdentity() {
  const st = statSync(bundleFile, { bigint: true });
  const id = Buffer.alloc(32);
  [st.size, st.mtimeNs, st.ino, st.dev].forEach((v, i) => id.writeBigUInt64BE(BigInt.asUintN(64, v), i * 8));
  return id;
}

/** Compiles and runs the bundle; returns its exports, and the cache for it (a Buffer to write). */
function loadBundle() {
  // latin1: the bundle is ASCII (scripts/code-cache.js refuses it otherwise), and a one-byte
  // string is made without UTF-8's decoding of 800 kB at every start
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundleFile, 'latin1')}\n})`;
  const identity = fileIdentity();
  let textHash;
  const hashText = () => (textHash ??= require('node:crypto').createHash('sha256').update(wrapped).digest());
  let cachedData;
  try {
    const cache = readFileSync(cacheFile);
    const data = cache.subarray(HEADER);
    // the file the cache was made from, or (a copy, an edit) exactly its text
    const sameText = cache.subarray(32, 64).equals(identity) || cache.subarray(0, 32).equals(hashText());
    if (sameText && cache.readUInt32BE(64) === crc32(data)) cachedData = data;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(wrapped, { filename: bundleFile, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
  const cache = () => {
    const data = script.createCachedData();
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc32(data));
    return Buffer.concat([hashText(), identity, sum, data]);
  };
  return { exports: module.exports, cache };
}

module.exports = { bundleFile, cacheFile, loadBundle };
