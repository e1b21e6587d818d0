import { WEBHOOK_EVENT_TYPES, WebhookDispatcher, type WebhookDelivery } from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { CliError, withJson } from './common.js';
import { output, pageQuery, when, withDomain, withPaging } from './domain-common.js';

const FLAGS = { url: '<url>', events: '--events', description: '--description', secret: '--secret' };

const eventsFlag = (v: string) =>
  v
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

const deliveryRow = (d: WebhookDelivery) => ({
  id: d.id,
  endpoint: d.endpointId,
  event: d.eventType,
  eventId: d.eventId,
  status: d.status,
  attempts: d.attempts,
  http: d.responseStatus ?? '',
  last: when(d.lastAttemptAt),
  error: d.lastError ?? '',
});

export function registerWebhooks(program: Command): void {
  const hooks = program
    .command('webhooks')
    .description(`outbound webhooks: signed POSTs to your endpoints on events (${WEBHOOK_EVENT_TYPES.join(', ')})`);

  withJson(
    hooks
      .command('add <url>')
      .description('add an endpoint and print its signing secret once')
      .option('--events <list>', 'event types, comma separated; <group>.* or * for all', '*')
      .option('--description <text>', 'what the endpoint is')
      .option('--secret <secret>', 'signing secret to use (default: a fresh whsec_ secret)'),
  ).action(async (url: string, o: { events: string; description?: string; secret?: string; json?: boolean }) =>
    withDomain(async (d) => {
      const { endpoint, secret } = await d.webhooks.createEndpoint({
        url,
        events: eventsFlag(o.events),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.secret !== undefined ? { secret: o.secret } : {}),
      });
      output(o, { ...endpoint, secret }, () =>
        [
          `added webhook endpoint ${endpoint.id}: ${endpoint.url} (${endpoint.events.join(', ')})`,
          '',
          `  signing secret: ${secret}`,
          '',
          'Store it now: it is shown only this once. Deliveries carry X-APIGate-Signature: v1=<hex HMAC-SHA256 of "<X-APIGate-Timestamp>.<body>">.',
        ].join('\n'),
      );
    }, FLAGS),
  );

  withJson(hooks.command('list').description('list webhook endpoints')).action(async (o: { json?: boolean }) =>
    withDomain(async (d) => {
      const all = await d.webhooks.listEndpoints();
      output(o, { data: all }, () =>
        all.length
          ? table(
              all.map((e) => ({ ...e, events: e.events.join(','), enabled: e.enabled ? 'yes' : 'no', created: when(e.createdAt) })),
              ['id', 'url', 'events', 'enabled', 'description', 'created'],
            )
          : 'no webhook endpoints; add one with `apigate webhooks add <url>`',
      );
    }),
  );

  withJson(hooks.command('remove <endpoint-id>').description('remove an endpoint (its delivery log goes with it)')).action(
    async (id: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        await d.webhooks.deleteEndpoint(id);
        output(o, { id, deleted: true }, () => `removed webhook endpoint ${id}`);
      }),
  );

  withJson(
    hooks
      .command('test <endpoint-id>')
      .description('send a signed `test` event to an endpoint now, from this process, and show the answer'),
  ).action(async (id: string, o: { json?: boolean }) =>
    withDomain(async (d) => {
      const endpoint = await d.webhooks.getEndpoint(id);
      // No queue: one attempt here and now, recorded in the delivery log like any other.
      const sender = new WebhookDispatcher({ domain: d, attempts: 1, backoffMs: 0 });
      const { event, deliveries } = await sender.emit(
        'test',
        { message: 'test event from apigate', endpoint_id: endpoint.id },
        { endpoints: [endpoint] },
      );
      const delivery = deliveries[0]!;
      output(o, { event, delivery }, () =>
        delivery.status === 'succeeded'
          ? `delivered test event ${event.id} to ${endpoint.url}: HTTP ${delivery.responseStatus}`
          : `test event ${event.id} to ${endpoint.url} failed: ${delivery.lastError}`,
      );
      if (delivery.status !== 'succeeded') process.exitCode = 1;
    }),
  );

  withJson(
    withPaging(
      hooks
        .command('deliveries')
        .description('the delivery log, oldest first')
        .option('--endpoint <endpoint-id>', 'one endpoint')
        .option('--status <status>', 'pending, succeeded or failed'),
    ),
  ).action(async (o: { endpoint?: string; status?: string; limit: string; cursor?: string; json?: boolean }) =>
    withDomain(async (d) => {
      if (o.status !== undefined && !['pending', 'succeeded', 'failed'].includes(o.status)) {
        throw new CliError(`--status: expected pending, succeeded or failed, got "${o.status}"`);
      }
      const page = await d.webhooks.listDeliveries({
        ...pageQuery(o),
        ...(o.endpoint ? { endpointId: o.endpoint } : {}),
        ...(o.status ? { status: o.status as WebhookDelivery['status'] } : {}),
      });
      output(o, { data: page.items, nextCursor: page.cursor ?? null }, () =>
        page.items.length
          ? table(page.items.map(deliveryRow), ['id', 'endpoint', 'event', 'eventId', 'status', 'attempts', 'http', 'last', 'error']) +
            (page.cursor ? `\nmore: --cursor ${page.cursor}` : '')
          : 'no deliveries',
      );
    }),
  );
}
