CREATE TABLE `portal_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `portal_sessions_hash_uq` ON `portal_sessions` (`hash`);--> statement-breakpoint
CREATE INDEX `portal_sessions_user_idx` ON `portal_sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `portal_sessions_expires_idx` ON `portal_sessions` (`expires_at`);--> statement-breakpoint
CREATE TABLE `portal_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`purpose` text NOT NULL,
	`hash` text NOT NULL,
	`email` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `portal_tokens_hash_uq` ON `portal_tokens` (`hash`);--> statement-breakpoint
CREATE INDEX `portal_tokens_user_idx` ON `portal_tokens` (`user_id`,`purpose`);--> statement-breakpoint
CREATE INDEX `portal_tokens_expires_idx` ON `portal_tokens` (`expires_at`);