import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type AnyProviderDefinition,
  type CapabilityMap,
  type CapabilityName,
  instrument,
  type KernelEvent,
  silentLogger,
} from '@apigate/kernel';

export interface TestInstance<C extends CapabilityName> {
  /** The provider wrapped by the kernel's instrumentation, exactly as the gateway sees it. */
  provider: CapabilityMap[C];
  /** Kernel events the provider and its wrapper emitted. */
  events: KernelEvent[];
  dataDir: string;
}

/**
 * Builds a provider from its definition the way the kernel does: config parsed by its schema
 * (values as strings, like env vars), a context with a temp data dir, and the instrumentation
 * wrapper (typed errors, key guards). Use it in a suite's `create`.
 */
export async function createForTest<C extends CapabilityName>(
  def: AnyProviderDefinition & { capability: C },
  config: Record<string, unknown> = {},
  opts: { dataDir?: string } = {},
): Promise<TestInstance<C>> {
  const parsed = def.config.parse(config);
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), `apigate-${def.capability}-${def.name}-`));
  const events: KernelEvent[] = [];
  const emit = (e: KernelEvent) => events.push(e);
  const raw = await def.create(parsed as never, {
    capability: def.capability,
    provider: def.name,
    logger: silentLogger(),
    dataDir,
    emit,
  });
  const { proxy } = instrument(raw as object, { capability: def.capability, provider: def.name, secrets: [], emit });
  return { provider: proxy as CapabilityMap[C], events, dataDir };
}
