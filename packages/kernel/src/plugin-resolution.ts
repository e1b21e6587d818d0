import { realpathSync } from 'node:fs';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * A module resolution hook (Node's `module.register`): `@apigate/kernel`, imported by any module
 * inside one of `roots`, resolves as if this kernel module had imported it (the package's
 * self-reference), so it is the app's kernel instance, whether the plugin folder has its own copy
 * of the kernel or none. Everything else resolves as usual.
 */
const HOOK = `
let roots = [];
let kernelParent = '';
export async function initialize(data) { roots = data.roots; kernelParent = data.kernelParent; }
export async function resolve(specifier, context, next) {
  if ((specifier === '@apigate/kernel' || specifier.startsWith('@apigate/kernel/')) && context.parentURL && roots.some((r) => context.parentURL.startsWith(r))) {
    return next(specifier, { ...context, parentURL: kernelParent });
  }
  return next(specifier, context);
}
`;

const shared = new Set<string>();

/**
 * Makes provider packages installed under `folders` (APIGATE_PLUGIN_PATH) use the running
 * kernel as their `@apigate/kernel` peer. Registers one hook per call with the folders not
 * covered yet; idempotent for the same folders.
 */
export function shareKernelWith(folders: string[]): void {
  const roots: string[] = [];
  for (const folder of folders) {
    let real: string;
    try {
      real = realpathSync(folder);
    } catch {
      continue; // a folder that does not exist has no plugins to import
    }
    const url = `${pathToFileURL(real).href}/`;
    if (!shared.has(url)) {
      shared.add(url);
      roots.push(url);
    }
  }
  if (roots.length === 0) return;
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, { data: { roots, kernelParent: import.meta.url } });
}
