import { customType } from 'drizzle-orm/pg-core';

/** PostgreSQL bytea as a Buffer: the twin of SQLite's `blob(n, { mode: 'buffer' })`. */
export const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => 'bytea',
});
