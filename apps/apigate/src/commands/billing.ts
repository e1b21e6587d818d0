import { selectedPayment, syncPlanPrices } from '@apigate/gateway';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { CliError, withJson } from './common.js';
import { withKernel } from './queue.js';
import { registerSubscriptions } from './subscriptions.js';

/** `apigate plans sync`: added to the `plans` command registered by plans.ts. */
export function registerBilling(program: Command): void {
  const plans = program.commands.find((c) => c.name() === 'plans') ?? program.command('plans').description('plans');
  withJson(
    plans
      .command('sync')
      .description('create or update a price at the payment provider for every priced plan and store the plan -> price mappings'),
  ).action(async (o: { json?: boolean }) => {
    await withKernel(['payment'], async (rt, kernel) => {
      const pay = selectedPayment(kernel);
      if (!pay)
        throw new CliError(
          'no payment provider is selected (PAYMENT_PROVIDER=none); set PAYMENT_PROVIDER or payment.provider, e.g. stripe',
        );
      const features = kernel.selected('payment')?.features;
      const rows = await syncPlanPrices({ store: rt.store, providerName: pay.name, payment: pay.payment, features });
      if (o.json) printJson(rows);
      else
        print(
          rows.length ? table(rows as never, ['planId', 'name', 'kind', 'priceId', 'changed']) : 'no plan has a price: nothing to sync',
        );
    });
  });
  registerSubscriptions(program);
}
