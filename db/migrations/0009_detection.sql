CREATE TYPE "public"."policy_status" AS ENUM('draft', 'active', 'paused');--> statement-breakpoint
CREATE TYPE "public"."policy_template" AS ENUM('data_theft_departing_users', 'data_leaks', 'security_policy_violations', 'risky_users');--> statement-breakpoint
CREATE TYPE "public"."signal_source" AS ENUM('hr', 'dlp', 'endpoint', 'activity');--> statement-breakpoint
CREATE TABLE "policies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"template" "policy_template" NOT NULL,
	"status" "policy_status" DEFAULT 'draft' NOT NULL,
	"scope" jsonb NOT NULL,
	"priority_groups" text[] DEFAULT '{}' NOT NULL,
	"indicators" jsonb NOT NULL,
	"thresholds" jsonb NOT NULL,
	"boosters" jsonb NOT NULL,
	"activation_window_days" integer NOT NULL,
	"daily_alert_cap" integer NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"activated_at" timestamp with time zone,
	"created_by" text NOT NULL,
	"updated_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "connector_data" (
	"source" "signal_source" NOT NULL,
	"type" text NOT NULL,
	"first_received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "connector_data_source_type_pk" PRIMARY KEY("source","type")
);
--> statement-breakpoint
CREATE TABLE "signal_batches" (
	"id" uuid PRIMARY KEY NOT NULL,
	"received_by" text NOT NULL,
	"accepted" integer NOT NULL,
	"duplicates" integer NOT NULL,
	"rejected" integer NOT NULL,
	"subjects" integer NOT NULL,
	"scoring_workflow_id" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"scored_at" timestamp with time zone,
	"result" jsonb
);
--> statement-breakpoint
CREATE TABLE "signals" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "signals_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"source" "signal_source" NOT NULL,
	"external_id" text NOT NULL,
	"subject_id" uuid NOT NULL,
	"type" text NOT NULL,
	"severity" "severity",
	"occurred_at" timestamp with time zone NOT NULL,
	"count" integer DEFAULT 1 NOT NULL,
	"attributes" jsonb NOT NULL,
	"sealed" text,
	"batch_id" uuid NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "signals_source_external_id_key" UNIQUE("source","external_id")
);
--> statement-breakpoint
CREATE TABLE "policy_daily_alerts" (
	"policy_id" uuid NOT NULL,
	"day" date NOT NULL,
	"count" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "policy_daily_alerts_policy_id_day_pk" PRIMARY KEY("policy_id","day")
);
--> statement-breakpoint
CREATE TABLE "subject_policy_scores" (
	"subject_id" uuid NOT NULL,
	"policy_id" uuid NOT NULL,
	"policy_version" integer NOT NULL,
	"trigger_signal_id" bigint NOT NULL,
	"triggered_at" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"score" integer NOT NULL,
	"raw_score" integer NOT NULL,
	"severity" "severity" NOT NULL,
	"risk_factors" jsonb NOT NULL,
	"alert_id" uuid,
	"suppressed_by_cap" boolean DEFAULT false NOT NULL,
	"computed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subject_policy_scores_subject_id_policy_id_pk" PRIMARY KEY("subject_id","policy_id")
);
--> statement-breakpoint
CREATE TABLE "subject_violations" (
	"subject_id" uuid NOT NULL,
	"case_id" uuid NOT NULL,
	"resolved_at" timestamp with time zone NOT NULL,
	CONSTRAINT "subject_violations_subject_id_case_id_pk" PRIMARY KEY("subject_id","case_id")
);
--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "dismissed_by" text;--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "dismissed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "trigger_signal_id" bigint;--> statement-breakpoint
ALTER TABLE "signals" ADD CONSTRAINT "signals_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_daily_alerts" ADD CONSTRAINT "policy_daily_alerts_policy_id_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."policies"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subject_policy_scores" ADD CONSTRAINT "subject_policy_scores_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subject_policy_scores" ADD CONSTRAINT "subject_policy_scores_policy_id_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."policies"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subject_violations" ADD CONSTRAINT "subject_violations_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "policies_list_idx" ON "policies" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "policies_status_idx" ON "policies" USING btree ("status");--> statement-breakpoint
CREATE INDEX "signals_subject_type_time_idx" ON "signals" USING btree ("subject_id","type","occurred_at");--> statement-breakpoint
CREATE INDEX "subject_policy_scores_policy_idx" ON "subject_policy_scores" USING btree ("policy_id","score");--> statement-breakpoint
CREATE INDEX "subjects_list_idx" ON "subjects" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "alerts_subject_policy_idx" ON "alerts" USING btree ("subject_id","policy_id");--> statement-breakpoint
CREATE INDEX "alerts_list_idx" ON "alerts" USING btree ("created_at","id");