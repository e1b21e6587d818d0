import { ApigateError, ConfigErrors, redact } from '@apigate/kernel';
import { Command, CommanderError } from 'commander';
import { registerAdmin } from './commands/admin.js';
import { registerBilling } from './commands/billing.js';
import { registerCerts } from './commands/certs.js';
import { registerDb } from './commands/db.js';
import { CliError } from './commands/common.js';
import { registerEmail } from './commands/email.js';
import { registerKeys } from './commands/keys.js';
import { registerMappings } from './commands/mappings.js';
import { registerPayments } from './commands/payments.js';
import { registerPlans } from './commands/plans.js';
import { registerProviders } from './commands/providers.js';
import { registerQueue } from './commands/queue.js';
import { registerRoutes } from './commands/routes.js';
import { registerServe } from './commands/serve.js';
import { registerSettings } from './commands/settings.js';
import { registerUsage } from './commands/usage.js';
import { registerUsers } from './commands/users.js';
import { registerWebhooks } from './commands/webhooks.js';
import { AggregateLinesError, appVersion } from './runtime.js';

export function buildProgram(): Command {
  const program = new Command('apigate')
    .description('APIGate: turn any HTTP API into a paid product')
    .version(appVersion(), '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
  registerServe(program);
  registerSettings(program);
  registerDb(program);
  registerProviders(program);
  registerMappings(program);
  registerEmail(program);
  registerQueue(program);
  registerUsers(program);
  registerPlans(program);
  registerBilling(program);
  registerPayments(program);
  registerKeys(program);
  registerRoutes(program);
  registerUsage(program);
  registerAdmin(program);
  registerWebhooks(program);
  registerCerts(program);
  return program;
}

/**
 * Every failure is printed as one line per problem, prefixed "apigate:", never a stack trace,
 * with the secrets this process knows and any URL credentials masked.
 */
export function errorLines(err: unknown): string[] {
  return rawErrorLines(err).map((line) => redact(line));
}

function rawErrorLines(err: unknown): string[] {
  if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
  if (err instanceof AggregateLinesError) return err.lines;
  if (err instanceof ApigateError || err instanceof CliError) return [err.message];
  if (err instanceof Error) return [err.message.split('\n')[0]!];
  return [String(err)];
}

export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    for (const line of errorLines(err)) process.stderr.write(`apigate: ${line}\n`);
    if (process.env.APIGATE_DEBUG && err instanceof Error) process.stderr.write(`${redact(err.stack ?? '')}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}
