import { defineConfig } from 'drizzle-kit';

// Generates SQL migrations from src/store/schema.ts into ./drizzle (committed, shipped in the package).
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './drizzle',
});
