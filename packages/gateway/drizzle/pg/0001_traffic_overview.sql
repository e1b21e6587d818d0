CREATE TABLE "usage_overhead_minutely" (
	"route_id" text NOT NULL,
	"minute" timestamp (3) with time zone NOT NULL,
	"bucket" bigint NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_overhead_minutely_pk" PRIMARY KEY("route_id","minute","bucket")
);
--> statement-breakpoint
CREATE TABLE "usage_route_minutely" (
	"route_id" text NOT NULL,
	"minute" timestamp (3) with time zone NOT NULL,
	"requests" bigint DEFAULT 0 NOT NULL,
	"bytes_in" bigint DEFAULT 0 NOT NULL,
	"bytes_out" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_route_minutely_pk" PRIMARY KEY("route_id","minute")
);
--> statement-breakpoint
CREATE INDEX "usage_overhead_minutely_minute_idx" ON "usage_overhead_minutely" USING btree ("minute");--> statement-breakpoint
CREATE INDEX "usage_route_minutely_minute_idx" ON "usage_route_minutely" USING btree ("minute");