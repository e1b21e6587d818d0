import type { ProviderInstance } from './common.js';

export type Severity = 'info' | 'warning' | 'error' | 'critical';

export interface Notification {
  id: string;
  event: string;
  title: string;
  text?: string;
  severity: Severity;
  fields?: Record<string, string | number>;
  url?: string;
  occurredAt: Date;
}

export interface NotificationProvider extends ProviderInstance {
  notify(n: Notification): Promise<void>;
}
