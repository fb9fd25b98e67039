CREATE TABLE "audit_checkpoints" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL,
	"signed_at" timestamp with time zone NOT NULL,
	"key_id" text NOT NULL,
	"signature" text NOT NULL,
	"created_by" text NOT NULL,
	CONSTRAINT "audit_checkpoints_seq_unique" UNIQUE("seq")
);
--> statement-breakpoint
CREATE TABLE "workflow_history_archive" (
	"workflow_id" text NOT NULL,
	"run_id" text NOT NULL,
	"root_workflow_id" text NOT NULL,
	"workflow_type" text NOT NULL,
	"status" text NOT NULL,
	"parent_workflow_id" text,
	"parent_run_id" text,
	"first_execution_run_id" text NOT NULL,
	"continued_from_run_id" text,
	"new_execution_run_id" text,
	"started_at" timestamp with time zone NOT NULL,
	"closed_at" timestamp with time zone NOT NULL,
	"event_count" integer NOT NULL,
	"history" "bytea" NOT NULL,
	"archived_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workflow_history_archive_workflow_id_run_id_pk" PRIMARY KEY("workflow_id","run_id")
);
--> statement-breakpoint
CREATE INDEX "workflow_history_archive_root_idx" ON "workflow_history_archive" USING btree ("root_workflow_id");--> statement-breakpoint
CREATE INDEX "audit_log_region_idx" ON "audit_log" USING btree ("region","seq");--> statement-breakpoint
CREATE INDEX "audit_log_action_idx" ON "audit_log" USING btree ("action","seq");--> statement-breakpoint
CREATE INDEX "audit_log_details_case_idx" ON "audit_log" USING btree (("details"->>'caseId'),"seq");