import path from 'node:path';
import { defineProvider, z } from '@apigate/kernel';
import { DiskStorage } from './disk-storage.js';

export { DiskStorage } from './disk-storage.js';

export default defineProvider({
  capability: 'storage',
  name: 'disk',
  description: 'Local filesystem storage (atomic writes; objects survive restarts)',
  config: z.object({
    path: z
      .string()
      .trim()
      .min(1, 'expected a folder path')
      .optional()
      .describe('the folder that holds the objects (default: <data dir>/storage)'),
  }),
  env: { path: 'STORAGE_PATH' },
  features: { persistent: true, signedUrls: false },
  create: async (config, ctx) => {
    const root = path.resolve(config.path ?? path.join(ctx.dataDir, 'storage'));
    try {
      return await DiskStorage.open(root);
    } catch (err) {
      const where = config.path ? 'STORAGE_PATH (setting storage.disk.path)' : 'the data directory';
      throw Object.assign(new Error(`disk storage: cannot use folder ${root} from ${where}: ${(err as Error).message}`, { cause: err }), {
        retryable: false,
      });
    }
  },
});
