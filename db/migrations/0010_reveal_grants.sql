CREATE TYPE "public"."reveal_grant_status" AS ENUM('active', 'expired', 'revoked', 'case_closed');--> statement-breakpoint
CREATE TABLE "reveal_grants" (
	"id" uuid PRIMARY KEY NOT NULL,
	"case_id" uuid NOT NULL,
	"step_id" uuid NOT NULL,
	"grantee" text NOT NULL,
	"region" text NOT NULL,
	"status" "reveal_grant_status" DEFAULT 'active' NOT NULL,
	"granted_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone,
	"ended_by" text
);
--> statement-breakpoint
CREATE INDEX "reveal_grants_case_idx" ON "reveal_grants" USING btree ("case_id","grantee");