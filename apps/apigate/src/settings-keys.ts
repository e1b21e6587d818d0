import { GATEWAY_SETTINGS } from '@apigate/gateway';
import {
  type AnyProviderDefinition,
  type CapabilityName,
  checkFieldValue,
  knownSettingKeys,
  parseFlag,
  snakeToCamel,
} from '@apigate/kernel';

export interface KeyInfo {
  secret: boolean;
  envVar?: string;
  /** Checks a value; returns what is expected when it is wrong. */
  validate(value: string): string | undefined;
}

/** Every key `apigate settings set` accepts, with how to check its value. */
export function settingKeys(defs: readonly AnyProviderDefinition[]): Map<string, KeyInfo> {
  const out = new Map<string, KeyInfo>();
  const base = knownSettingKeys(defs);
  for (const [key, info] of base) {
    out.set(key, { ...info, validate: validatorFor(key, defs) });
  }
  for (const [key, info] of Object.entries(GATEWAY_SETTINGS)) out.set(key, { ...info, secret: info.secret ?? false });
  return out;
}

function validatorFor(key: string, defs: readonly AnyProviderDefinition[]): (v: string) => string | undefined {
  const [cap, name, field] = key.split('.') as [CapabilityName, string, string | undefined];
  if (name === 'provider' && field === undefined) {
    const installed = defs.filter((d) => d.capability === cap).map((d) => d.name);
    return (v) => {
      const names = cap === 'oauth' ? v.split(',').map((s) => s.trim()) : [v.trim()];
      const bad = names.filter((n) => n !== 'none' && !installed.includes(n));
      return bad.length ? `expected one of the installed ${cap} providers: ${installed.join(', ') || 'none installed'}` : undefined;
    };
  }
  if (field === 'enabled') {
    return (v) => {
      try {
        parseFlag(v);
        return undefined;
      } catch {
        return 'expected true or false';
      }
    };
  }
  const def = defs.find((d) => d.capability === cap && d.name === name);
  if (!def || !field) return () => undefined;
  return (v) => checkFieldValue(def, snakeToCamel(field), v);
}

/** The closest known keys to a mistyped one, for "did you mean". */
export function suggestKeys(key: string, known: Iterable<string>): string[] {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  return [...known]
    .map((k) => ({ k, d: dist(key, k) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(key.length / 4)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => x.k);
}
