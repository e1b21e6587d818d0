import type { Kernel, QueueProvider } from '@apigate/kernel';
import { selectedPayment } from '../billing/inbound-webhooks.js';

/**
 * The selected payment provider with the queue its webhooks go through, or undefined. The route
 * verifies and queues, the payment worker applies: both exist only with a queue. The one place
 * that says so: the HTTP app and startApiGate ask here.
 */
export function paymentPipeline(kernel: Kernel): (NonNullable<ReturnType<typeof selectedPayment>> & { queue: QueueProvider }) | undefined {
  const pay = selectedPayment(kernel);
  const queue = kernel.tryGet('queue');
  return pay && queue ? { ...pay, queue } : undefined;
}
