ALTER TABLE `payment_events` ADD `raw_body` blob;--> statement-breakpoint
ALTER TABLE `payment_events` ADD `headers` text;--> statement-breakpoint
ALTER TABLE `payment_events` ADD `attempts` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `payment_events` ADD `last_error` text;--> statement-breakpoint
ALTER TABLE `payment_events` ADD `next_attempt_at` integer;--> statement-breakpoint
ALTER TABLE `payment_events` ADD `applied_at` integer;--> statement-breakpoint
CREATE INDEX `payment_events_status_idx` ON `payment_events` (`status`,`next_attempt_at`);--> statement-breakpoint
ALTER TABLE `subscriptions` ADD `last_event_seq` text;--> statement-breakpoint
ALTER TABLE `subscriptions` ADD `past_due_since` integer;