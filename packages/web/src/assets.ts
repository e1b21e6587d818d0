import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';

/** Where the pages' static files are served: under /portal, which the proxy never forwards. */
export const ASSET_PATH = '/portal/assets';

interface Asset {
  body: Buffer;
  type: string;
}

export interface AssetUrls {
  uplotJs: string;
  uplotCss: string;
  appJs: string;
  appCss: string;
}

const require = createRequire(import.meta.url);
const ownFile = (name: string) => fileURLToPath(new URL(`../static/${name}`, import.meta.url));

/**
 * The pages' JS and CSS, read once: uPlot from its npm package and the app's own files from
 * static/. Each is served under a name carrying a hash of its content, so it can be cached for
 * a year and a new build still reaches every browser at once.
 */
export function loadAssets(): { urls: AssetUrls; files: Map<string, Asset> } {
  const files = new Map<string, Asset>();
  const add = (stem: string, file: string, type: string) => {
    const body = readFileSync(file);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    const name = `${stem}.${hash}${type.startsWith('text/css') ? '.css' : '.js'}`;
    files.set(name, { body, type });
    return `${ASSET_PATH}/${name}`;
  };
  const urls: AssetUrls = {
    uplotJs: add('uplot', require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    uplotCss: add('uplot', require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
    appJs: add('app', ownFile('app.js'), 'text/javascript; charset=utf-8'),
    appCss: add('app', ownFile('app.css'), 'text/css; charset=utf-8'),
  };
  return { urls, files };
}

/** GET /portal/assets/<name>.<hash>: immutable for a year; unknown names 404. */
export function serveAssets(app: Hono, files: Map<string, Asset>): void {
  app.get(`${ASSET_PATH}/:name`, (c) => {
    const asset = files.get(c.req.param('name'));
    if (!asset) return c.text('not found', 404);
    c.header('Content-Type', asset.type);
    c.header('Cache-Control', 'public, max-age=31536000, immutable');
    c.header('X-Content-Type-Options', 'nosniff');
    return c.body(new Uint8Array(asset.body));
  });
}
