CREATE TABLE `usage_overhead_minutely` (
	`route_id` text NOT NULL,
	`minute` integer NOT NULL,
	`bucket` integer NOT NULL,
	`count` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`route_id`, `minute`, `bucket`)
);
--> statement-breakpoint
CREATE INDEX `usage_overhead_minutely_minute_idx` ON `usage_overhead_minutely` (`minute`);--> statement-breakpoint
CREATE TABLE `usage_route_minutely` (
	`route_id` text NOT NULL,
	`minute` integer NOT NULL,
	`requests` integer DEFAULT 0 NOT NULL,
	`bytes_in` integer DEFAULT 0 NOT NULL,
	`bytes_out` integer DEFAULT 0 NOT NULL,
	`errors` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`route_id`, `minute`)
);
--> statement-breakpoint
CREATE INDEX `usage_route_minutely_minute_idx` ON `usage_route_minutely` (`minute`);