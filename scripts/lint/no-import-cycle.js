import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import ts from 'typescript';

/**
 * ESLint rule: no import cycle between source files, type-only imports included.
 *
 * eslint-plugin-import(-x)'s no-cycle skips `import type` edges (they vanish at run time) and has
 * no option to count them; but a cycle through types still ties two modules' designs together
 * (settings types in role.ts, routes importing routes), so every edge counts here: imports,
 * `import type`, `export ... from`, `import()` and `import('x').T`. Specifiers resolve the way
 * tsc resolves them (the nearest tsconfig.json), so `./x.js` is `./x.ts` and `@danmaku/*` is the
 * workspace's source; what resolves into node_modules or to a declaration file is outside the
 * graph.
 */

/** Per tsconfig.json (or none): the options and a resolution cache shared by every file under it. */
const resolvers = new Map();
/** Per file: its resolved imports, read from disk, and when that was checked. */
const edges = new Map();
/** Files change while an editor's ESLint server lives: re-read one at most this often. */
const RECHECK_MS = 1000;

/** Per folder: the tsconfig.json that governs it ('' for none). */
const configs = new Map();

function resolverFor(file) {
  const dir = dirname(file);
  let config = configs.get(dir);
  if (config === undefined) {
    config = ts.findConfigFile(dir, ts.sys.fileExists) ?? '';
    configs.set(dir, config);
  }
  let resolver = resolvers.get(config);
  if (!resolver) {
    let options = { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler };
    if (config) {
      const read = ts.readConfigFile(config, ts.sys.readFile);
      if (!read.error) options = ts.parseJsonConfigFileContent(read.config, ts.sys, dirname(config), undefined, config).options;
    }
    resolver = { options, cache: ts.createModuleResolutionCache(config ? dirname(config) : dir, (name) => name, options) };
    resolvers.set(config, resolver);
  }
  return resolver;
}

/** The source file a specifier names, or null when it is a library's, a declaration or not code. */
function resolve(specifier, from) {
  const { options, cache } = resolverFor(from);
  const found = ts.resolveModuleName(specifier, from, options, ts.sys, cache).resolvedModule;
  if (!found || found.extension === ts.Extension.Dts || found.extension === ts.Extension.Json) return null;
  const file = realpathSync(found.resolvedFileName);
  return file.includes('/node_modules/') ? null : file;
}

function importsOf(file) {
  const now = Date.now();
  const known = edges.get(file);
  if (known && now - known.checkedAt < RECHECK_MS) return known.targets;
  let mtimeMs = -1;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    // Gone since it was resolved: no edges.
  }
  if (known && known.mtimeMs === mtimeMs) {
    known.checkedAt = now;
    return known.targets;
  }
  const targets = new Set();
  if (mtimeMs >= 0) {
    for (const { fileName } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      const target = resolve(fileName, file);
      if (target) targets.add(target);
    }
  }
  edges.set(file, { mtimeMs, checkedAt: now, targets });
  return targets;
}

/** The shortest import path from `start` back to `home`, or null (breadth first). */
function pathBack(start, home) {
  const parents = new Map([[start, null]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i];
    for (const next of importsOf(file)) {
      if (next === home) {
        const path = [home];
        for (let at = file; at !== null; at = parents.get(at)) path.unshift(at);
        return path;
      }
      if (!parents.has(next)) {
        parents.set(next, file);
        queue.push(next);
      }
    }
  }
  return null;
}

/** @type {import('eslint').Rule.RuleModule} */
export default {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import cycles between source files, type-only imports included.' },
    schema: [],
    messages: { cycle: 'Import cycle: {{path}}. Move what both sides need into a module of its own.' },
  },
  create(context) {
    const home = context.physicalFilename;
    if (home === '<text>') return {};
    let homeReal;
    try {
      homeReal = realpathSync(home);
    } catch {
      return {};
    }
    const check = (node, source) => {
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      const target = resolve(source.value, homeReal);
      if (!target) return;
      const back = target === homeReal ? [homeReal] : pathBack(target, homeReal);
      if (!back) return;
      const path = [homeReal, ...back].map((file) => relative(context.cwd, file)).join(' -> ');
      context.report({ node, messageId: 'cycle', data: { path } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
      TSImportType: (node) => check(node, node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument),
    };
  },
};
