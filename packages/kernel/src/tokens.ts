import type { InjectionToken } from 'tsyringe';
import type { CapabilityMap, CapabilityName } from './capabilities/index.js';

/** What each capability's token resolves to: one instance, or a name->instance map for oauth. */
export type Resolved<C extends CapabilityName> = C extends 'oauth' ? ReadonlyMap<string, CapabilityMap['oauth']> : CapabilityMap[C];

/** One DI token per capability. Global symbols, so two copies of the kernel agree. */
export const Tokens: { readonly [C in CapabilityName]: InjectionToken<Resolved<C>> } = {
  payment: Symbol.for('apigate:payment'),
  email: Symbol.for('apigate:email'),
  cache: Symbol.for('apigate:cache'),
  storage: Symbol.for('apigate:storage'),
  queue: Symbol.for('apigate:queue'),
  notification: Symbol.for('apigate:notification'),
  oauth: Symbol.for('apigate:oauth'),
  tls: Symbol.for('apigate:tls'),
};

/** The kernel itself, for code that needs events, health or metrics. */
export const KernelToken: InjectionToken<unknown> = Symbol.for('apigate:kernel');
