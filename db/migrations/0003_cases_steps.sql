CREATE TYPE "public"."case_resolution" AS ENUM('benign', 'confirmed_violation');--> statement-breakpoint
CREATE TYPE "public"."case_status" AS ENUM('open', 'under_investigation', 'hr_action', 'closed');--> statement-breakpoint
CREATE TYPE "public"."note_kind" AS ENUM('comment', 'system');--> statement-breakpoint
CREATE TYPE "public"."stakeholder" AS ENUM('legal', 'hr', 'privacy', 'compliance', 'security', 'it');--> statement-breakpoint
CREATE TYPE "public"."step_decision" AS ENUM('approve', 'reject');--> statement-breakpoint
CREATE TYPE "public"."step_kind" AS ENUM('reveal_identity', 'send_notice', 'escalate_investigation', 'escalate_hr_action', 'resolve_confirmed_violation');--> statement-breakpoint
CREATE TYPE "public"."step_status" AS ENUM('pending', 'approved', 'rejected', 'expired', 'cancelled');--> statement-breakpoint
CREATE TYPE "public"."notification_kind" AS ENUM('reminder', 'escalation', 'expired');--> statement-breakpoint
CREATE TABLE "case_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"case_id" uuid NOT NULL,
	"type" text NOT NULL,
	"actor" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "case_notes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"case_id" uuid NOT NULL,
	"author" text NOT NULL,
	"kind" "note_kind" NOT NULL,
	"body" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cases" (
	"id" uuid PRIMARY KEY NOT NULL,
	"subject_id" uuid NOT NULL,
	"region" text NOT NULL,
	"status" "case_status" DEFAULT 'open' NOT NULL,
	"severity" "severity" NOT NULL,
	"owner" text,
	"opened_by" text NOT NULL,
	"alert_count" integer DEFAULT 0 NOT NULL,
	"resolution" "case_resolution",
	"action_taken" text,
	"resolved_by" text,
	"resolved_at" timestamp with time zone,
	"workflow_id" text NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "step_decisions" (
	"step_id" uuid NOT NULL,
	"approver" text NOT NULL,
	"stakeholder" "stakeholder" NOT NULL,
	"decision" "step_decision" NOT NULL,
	"comment" text NOT NULL,
	"request_id" text,
	"decided_at" timestamp with time zone NOT NULL,
	CONSTRAINT "step_decisions_step_id_approver_pk" PRIMARY KEY("step_id","approver")
);
--> statement-breakpoint
CREATE TABLE "steps" (
	"id" uuid PRIMARY KEY NOT NULL,
	"case_id" uuid NOT NULL,
	"kind" "step_kind" NOT NULL,
	"region" text NOT NULL,
	"status" "step_status" DEFAULT 'pending' NOT NULL,
	"requested_by" text NOT NULL,
	"reason" text NOT NULL,
	"template_id" text,
	"rule" jsonb NOT NULL,
	"requirements" jsonb NOT NULL,
	"progress" jsonb NOT NULL,
	"outstanding" text[] NOT NULL,
	"languages" text[] NOT NULL,
	"require_language" boolean NOT NULL,
	"restricted" text[] NOT NULL,
	"escalated" boolean DEFAULT false NOT NULL,
	"sla_ms" bigint NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"remind_at" jsonb NOT NULL,
	"outcome_reason" text,
	"decided_at" timestamp with time zone,
	"workflow_id" text NOT NULL,
	"version" bigint DEFAULT 0 NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notifications" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" "notification_kind" NOT NULL,
	"step_id" uuid NOT NULL,
	"case_id" uuid NOT NULL,
	"region" text NOT NULL,
	"stakeholder" "stakeholder" NOT NULL,
	"excluded" text[] NOT NULL,
	"remaining" integer NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "case_events" ADD CONSTRAINT "case_events_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "case_notes" ADD CONSTRAINT "case_notes_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "cases" ADD CONSTRAINT "cases_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_decisions" ADD CONSTRAINT "step_decisions_step_id_steps_id_fk" FOREIGN KEY ("step_id") REFERENCES "public"."steps"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "steps" ADD CONSTRAINT "steps_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_step_id_steps_id_fk" FOREIGN KEY ("step_id") REFERENCES "public"."steps"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "case_events_case_idx" ON "case_events" USING btree ("case_id","at","id");--> statement-breakpoint
CREATE INDEX "case_notes_case_idx" ON "case_notes" USING btree ("case_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "cases_one_active_per_subject" ON "cases" USING btree ("subject_id") WHERE "cases"."status" <> 'closed';--> statement-breakpoint
CREATE INDEX "cases_list_idx" ON "cases" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cases_region_status_idx" ON "cases" USING btree ("region","status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cases_region_severity_idx" ON "cases" USING btree ("region","severity","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cases_status_idx" ON "cases" USING btree ("status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cases_owner_idx" ON "cases" USING btree ("owner","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "steps_case_idx" ON "steps" USING btree ("case_id","requested_at");--> statement-breakpoint
CREATE INDEX "steps_inbox_idx" ON "steps" USING btree ("status","region","requested_at","id");--> statement-breakpoint
CREATE INDEX "notifications_step_idx" ON "notifications" USING btree ("step_id","created_at");--> statement-breakpoint
CREATE INDEX "notifications_stakeholder_idx" ON "notifications" USING btree ("region","stakeholder","created_at");