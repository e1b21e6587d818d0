import { InvalidInputError } from '@apigate/kernel';

/**
 * BullMQ refuses custom job ids that are integers or contain ":" (its key separator). Our
 * contract allows any id, so those (and anything starting with the escape mark "~") are stored
 * as "~" + encodeURIComponent(id): reversible, never an integer, never containing ":".
 */
export function toBullId(id: string): string {
  if (!id.startsWith('~') && !id.includes(':') && String(Number.parseInt(id, 10)) !== id) return id;
  try {
    return `~${encodeURIComponent(id)}`;
  } catch {
    throw new InvalidInputError('jobId must be valid Unicode text');
  }
}

export function fromBullId(bullId: string): string {
  return bullId.startsWith('~') ? decodeURIComponent(bullId.slice(1)) : bullId;
}
