import { z } from '@apigate/kernel';
import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Tables } from '../store/dialect.js';
import type { DomainContext } from './context.js';
import { notFound } from './errors.js';
import { ADMIN_TOKEN_PREFIX, newId, newSecret, sha256Hex } from './ids.js';
import { parseInput } from './validate.js';

/** An admin API token as listed: never the token, never its hash. */
export interface AdminToken {
  id: string;
  name: string;
  /** `agt_` and the first 8 random characters. */
  prefix: string;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

const createSchema = z
  .object({ name: z.string({ error: 'expected a name' }).trim().max(100, { error: 'at most 100 characters' }).default('') })
  .strict();

const columns = ({ adminTokens }: Tables) => ({
  id: adminTokens.id,
  name: adminTokens.name,
  prefix: adminTokens.prefix,
  lastUsedAt: adminTokens.lastUsedAt,
  revokedAt: adminTokens.revokedAt,
  createdAt: adminTokens.createdAt,
});

/** Tokens for the admin API, made by `apigate admin token create`; stored as SHA-256 only. */
export class AdminTokenRepository {
  constructor(private readonly ctx: DomainContext) {}

  /** `token` is the secret, returned only here. */
  async create(input: { name?: string } = {}): Promise<{ adminToken: AdminToken; token: string }> {
    const v = parseInput(createSchema, input, 'admin token');
    const secret = newSecret(ADMIN_TOKEN_PREFIX);
    const id = newId('tok');
    const { adminTokens } = this.ctx.t;
    const [row] = await this.ctx.db
      .insert(adminTokens)
      .values({ id, name: v.name, prefix: secret.prefix, hash: secret.hash, createdAt: this.ctx.now() })
      .returning(columns(this.ctx.t));
    return { adminToken: row!, token: secret.secret };
  }

  /** Oldest first, revoked ones included. */
  async list(): Promise<AdminToken[]> {
    const { adminTokens } = this.ctx.t;
    return this.ctx.db.select(columns(this.ctx.t)).from(adminTokens).orderBy(asc(adminTokens.createdAt), asc(adminTokens.id));
  }

  /** Revoking twice keeps the first time. */
  async revoke(id: string): Promise<AdminToken> {
    const { adminTokens } = this.ctx.t;
    const [row] = await this.ctx.db.select(columns(this.ctx.t)).from(adminTokens).where(eq(adminTokens.id, id));
    if (!row) throw notFound('admin token', id);
    if (row.revokedAt) return row;
    return (
      await this.ctx.db.update(adminTokens).set({ revokedAt: this.ctx.now() }).where(eq(adminTokens.id, id)).returning(columns(this.ctx.t))
    )[0]!;
  }

  /** The live token with this secret (and records its use), or undefined. */
  async verify(token: string): Promise<AdminToken | undefined> {
    if (!token.startsWith(ADMIN_TOKEN_PREFIX)) return undefined;
    const { adminTokens } = this.ctx.t;
    const [row] = await this.ctx.db
      .update(adminTokens)
      .set({ lastUsedAt: this.ctx.now() })
      .where(and(eq(adminTokens.hash, sha256Hex(token)), isNull(adminTokens.revokedAt)))
      .returning(columns(this.ctx.t));
    return row;
  }
}
