CREATE TYPE "public"."alert_status" AS ENUM('needs_review', 'confirmed', 'dismissed', 'resolved');--> statement-breakpoint
CREATE TYPE "public"."severity" AS ENUM('low', 'medium', 'high');--> statement-breakpoint
CREATE TABLE "identity_vault" (
	"subject_id" uuid PRIMARY KEY NOT NULL,
	"key_id" text NOT NULL,
	"ciphertext" text NOT NULL,
	"fingerprint" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "subjects" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"external_key" text NOT NULL,
	"pseudonym" text NOT NULL,
	"region" text NOT NULL,
	"department" text,
	"groups" text[] DEFAULT '{}' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subjects_external_key_unique" UNIQUE("external_key"),
	CONSTRAINT "subjects_pseudonym_unique" UNIQUE("pseudonym")
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"subject_id" uuid NOT NULL,
	"policy_id" uuid NOT NULL,
	"region" text NOT NULL,
	"status" "alert_status" DEFAULT 'needs_review' NOT NULL,
	"severity" "severity" NOT NULL,
	"score" integer NOT NULL,
	"risk_factors" jsonb NOT NULL,
	"assignee" text,
	"case_id" uuid,
	"dismiss_reason" text,
	"dismiss_comment" text,
	"triggered_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "identity_vault" ADD CONSTRAINT "identity_vault_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "subjects_region_idx" ON "subjects" USING btree ("region");--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_one_open_per_subject_policy" ON "alerts" USING btree ("subject_id","policy_id") WHERE "alerts"."status" in ('needs_review', 'confirmed');--> statement-breakpoint
CREATE INDEX "alerts_queue_idx" ON "alerts" USING btree ("status","region","created_at","id");--> statement-breakpoint
CREATE INDEX "alerts_case_idx" ON "alerts" USING btree ("case_id");