// The CLI is bundled into one CommonJS file (dist/tsbuild.cjs) and compiled with V8's code cache
// (dist/tsbuild.cjs.cache, written by `npm run build`): one file to read instead of a few hundred,
// and no parsing or compiling of it, make every command start sooner. V8 itself refuses a cache
// from another Node version, but checks only the source's length, and not its own data (damaged
// data it accepts crashes the process without a word, or runs wrong code). So the cache is
// [sha256 of the exact text it was compiled from][the bundle file's size, mtime, inode and device
// when it was][crc32 of the V8 data][the commands it has learnt][V8 data], and is used only for
// that text, and only when the data is whole. The text is hashed again only when the file is not
// the one the cache was made from (a copy, an edit): a start neither hashes a megabyte of
// JavaScript to find it unchanged nor loads node:crypto to do so.
//
// `npm run build` caches the code every command loads; what a command then runs (a fully cached
// build calls some hundreds of functions) V8 compiles when first called, at every start: ~40% of
// what a cached build adds to Node's own start. So the cache learns: the first time a command
// succeeds, the cache is written again from that process, with every function it compiled, and
// names the command as learnt (written once per command, not at every start). An install the user
// cannot write learns into the user's own cache directory instead ($XDG_CACHE_HOME or ~/.cache,
// tsbuild/), which is then read first.
'use strict';
const { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');
const { crc32 } = require('node:zlib');

const bundleFile = path.join(__dirname, '..', 'dist', 'tsbuild.cjs');
const cacheFile = `${bundleFile}.cache`;
const FIXED = 32 + 32 + 4 + 2;

/** The bundle file as it is on disk: its size, mtime (ns), inode and device, 8 bytes each. */
function fileIdentity() {
  const st = statSync(bundleFile, { bigint: true });
  const id = Buffer.alloc(32);
  [st.size, st.mtimeNs, st.ino, st.dev].forEach((v, i) => id.writeBigUInt64BE(BigInt.asUintN(64, v), i * 8));
  return id;
}

/**
 * Where an install the user cannot write (root's, shared) keeps what its cache learns for this
 * user: beside the user's other caches, named for the bundle file as it is.
 */
function userCacheFile(identity) {
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME && path.join(process.env.HOME, '.cache'));
  return base ? path.join(base, 'tsbuild', `code-${identity.toString('hex')}.cache`) : undefined;
}

/** A cache file's V8 data and the commands it has learnt, when it is whole and made from this bundle's text. */
function readCache(file, identity, hashText) {
  try {
    const cache = readFileSync(file);
    const namesEnd = FIXED + cache.readUInt16BE(68);
    const data = cache.subarray(namesEnd);
    // the file the cache was made from, or (a copy, an edit) exactly its text
    const sameText = cache.subarray(32, 64).equals(identity) || cache.subarray(0, 32).equals(hashText());
    if (!sameText || cache.readUInt32BE(64) !== crc32(data)) return undefined;
    return { file, data, learnt: cache.subarray(FIXED, namesEnd).toString('latin1').split(',').filter(Boolean) };
  } catch {
    return undefined;
  }
}

/** Writes a file whole or not at all (two processes at once each write their own); false when it cannot. */
function writeWhole(file, bytes) {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {}
    return false;
  }
}

/**
 * Compiles and runs the bundle; returns its exports, the cache for it (a Buffer to write), and
 * learn(command), which writes the cache again once for each command that has not yet been.
 */
function loadBundle() {
  // latin1: the bundle is ASCII (scripts/code-cache.js refuses it otherwise), and a one-byte
  // string is made without UTF-8's decoding of 800 kB at every start
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundleFile, 'latin1')}\n})`;
  const identity = fileIdentity();
  let textHash;
  const hashText = () => (textHash ??= require('node:crypto').createHash('sha256').update(wrapped).digest());
  const userFile = userCacheFile(identity);
  const found = (userFile && readCache(userFile, identity, hashText)) || readCache(cacheFile, identity, hashText);
  const script = new vm.Script(wrapped, { filename: bundleFile, cachedData: found?.data });
  // refused by V8 (made under other flags): whatever runs next writes one it takes
  const learnt = found && !script.cachedDataRejected ? found.learnt : [];
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
  const cache = (names = []) => {
    const data = script.createCachedData();
    const head = Buffer.alloc(FIXED - 64);
    head.writeUInt32BE(crc32(data));
    const list = Buffer.from(names.join(','), 'latin1');
    head.writeUInt16BE(list.length, 4);
    return Buffer.concat([hashText(), identity, head, list, data]);
  };
  const learn = (command) => {
    if (learnt.includes(command)) return;
    const bytes = cache([...learnt, command]);
    // the install's own cache, unless the user's is the one in use or the install is read-only
    if (found?.file !== userFile && writeWhole(cacheFile, bytes)) return;
    if (!userFile) return;
    try {
      const dir = path.dirname(userFile);
      mkdirSync(dir, { recursive: true });
      // caches of bundles since replaced go
      for (const name of readdirSync(dir)) if (/^code-[0-9a-f]{64}\.cache$/.test(name) && name !== path.basename(userFile)) rmSync(path.join(dir, name), { force: true });
      writeWhole(userFile, bytes);
    } catch {}
  };
  return { exports: module.exports, cache, learn };
}

module.exports = { bundleFile, cacheFile, loadBundle };
