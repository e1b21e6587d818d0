import { defineConfig } from 'drizzle-kit';

// PostgreSQL migrations from src/store/schema.pg.ts (generated from schema.ts by scripts/pg-schema.mjs) into ./drizzle/pg.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/schema.pg.ts',
  out: './drizzle/pg',
});
