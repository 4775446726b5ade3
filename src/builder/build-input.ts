// What a build (or its checks alone) reads first: the context directory and the Dockerfile's text.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';

export interface BuildInput {
  /** The context directory, absolute. */
  contextDir: string;
  /** The Dockerfile, absolute. */
  dockerfile: string;
  /** The Dockerfile as messages name it: relative to the working directory. */
  shown: string;
  text: string;
}

/** The context (which must be a directory) and the Dockerfile (`file`, default <context>/Dockerfile), read; errors as docker build words them. */
export function readBuildInput(context: string, file?: string): BuildInput {
  const contextDir = path.resolve(context);
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    throw new UsageError(`unable to prepare context: path "${context}" not found or not a directory`);
  }
  const dockerfile = path.resolve(file ?? path.join(contextDir, 'Dockerfile'));
  const shown = path.relative(process.cwd(), dockerfile) || dockerfile;
  try {
    return { contextDir, dockerfile, shown, text: readFileSync(dockerfile, 'utf8') };
  } catch (err) {
    throw new UsageError(`failed to read Dockerfile ${shown}: ${existsSync(dockerfile) ? (err as Error).message : 'no such file'}`, { cause: err });
  }
}
