CREATE TYPE "public"."notice_status" AS ENUM('queued', 'sent', 'failed');--> statement-breakpoint
CREATE TYPE "public"."notice_outbox_status" AS ENUM('pending', 'sending', 'deferred', 'accepted', 'failed');--> statement-breakpoint
CREATE TABLE "notice_template_versions" (
	"template_id" text NOT NULL,
	"version" integer NOT NULL,
	"name" text NOT NULL,
	"language" text NOT NULL,
	"from_address" text NOT NULL,
	"from_name" text,
	"cc" text[] NOT NULL,
	"bcc" text[] NOT NULL,
	"subject" text NOT NULL,
	"html_body" text NOT NULL,
	"text_body" text NOT NULL,
	"response_days" integer NOT NULL,
	"placeholders" text[] NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notice_template_versions_template_id_version_pk" PRIMARY KEY("template_id","version")
);
--> statement-breakpoint
CREATE TABLE "notice_templates" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"language" text NOT NULL,
	"latest_version" integer NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notice_outbox" (
	"notice_id" uuid PRIMARY KEY NOT NULL,
	"message_id" text NOT NULL,
	"status" "notice_outbox_status" DEFAULT 'pending' NOT NULL,
	"claimed_by" text,
	"claim_attempt" integer,
	"claimed_at" timestamp with time zone,
	"transmissions" integer DEFAULT 0 NOT NULL,
	"smtp_response" text,
	"smtp_code" integer,
	"accepted_at" timestamp with time zone,
	"last_error" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notices" (
	"id" uuid PRIMARY KEY NOT NULL,
	"case_id" uuid NOT NULL,
	"step_id" uuid NOT NULL,
	"region" text NOT NULL,
	"template_id" text NOT NULL,
	"template_version" integer NOT NULL,
	"language" text NOT NULL,
	"status" "notice_status" DEFAULT 'queued' NOT NULL,
	"message_id" text NOT NULL,
	"case_reference" text NOT NULL,
	"policy_name" text NOT NULL,
	"response_deadline" timestamp with time zone NOT NULL,
	"requested_by" text NOT NULL,
	"failure_reason" text,
	"queued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	"failed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notices_step_id_unique" UNIQUE("step_id"),
	CONSTRAINT "notices_message_id_unique" UNIQUE("message_id")
);
--> statement-breakpoint
ALTER TABLE "notice_template_versions" ADD CONSTRAINT "notice_template_versions_template_id_notice_templates_id_fk" FOREIGN KEY ("template_id") REFERENCES "public"."notice_templates"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notice_outbox" ADD CONSTRAINT "notice_outbox_notice_id_notices_id_fk" FOREIGN KEY ("notice_id") REFERENCES "public"."notices"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notices" ADD CONSTRAINT "notices_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notices" ADD CONSTRAINT "notices_step_id_steps_id_fk" FOREIGN KEY ("step_id") REFERENCES "public"."steps"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notice_templates_list_idx" ON "notice_templates" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "notice_templates_language_idx" ON "notice_templates" USING btree ("language","updated_at");--> statement-breakpoint
CREATE INDEX "notices_case_idx" ON "notices" USING btree ("case_id","queued_at");