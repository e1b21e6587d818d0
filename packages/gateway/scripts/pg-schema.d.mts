/** The PostgreSQL schema source (schema.pg.ts) for the SQLite schema source (schema.ts). */
export function toPgSchema(src: string): string;
