CREATE TABLE `usage_reports` (
	`id` text PRIMARY KEY NOT NULL,
	`subscription_id` text NOT NULL,
	`provider` text NOT NULL,
	`period` text NOT NULL,
	`cumulative` integer NOT NULL,
	`quantity` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`error` text,
	`created_at` integer NOT NULL,
	`reported_at` integer,
	FOREIGN KEY (`subscription_id`) REFERENCES `subscriptions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `usage_reports_subscription_idx` ON `usage_reports` (`subscription_id`,`period`);--> statement-breakpoint
ALTER TABLE `plans` ADD `yearly_price_cents` integer;