CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `provider_mappings` (
	`provider` text NOT NULL,
	`entity_type` text NOT NULL,
	`local_id` text NOT NULL,
	`external_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`provider`, `entity_type`, `local_id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `provider_mappings_external_uq` ON `provider_mappings` (`provider`,`entity_type`,`external_id`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`secret` integer DEFAULT false NOT NULL,
	`updated_at` integer NOT NULL
);
