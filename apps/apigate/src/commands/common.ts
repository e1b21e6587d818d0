import type { Command } from 'commander';

/** An error the CLI prints as one line and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print machine-readable JSON');
}
