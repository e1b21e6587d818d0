CREATE TABLE `certificates` (
	`domains_key` text PRIMARY KEY NOT NULL,
	`cert_pem` text NOT NULL,
	`chain_pem` text NOT NULL,
	`key_pem` text NOT NULL,
	`serial` text NOT NULL,
	`issuer` text NOT NULL,
	`not_before` integer NOT NULL,
	`not_after` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `certificates_not_after_idx` ON `certificates` (`not_after`);