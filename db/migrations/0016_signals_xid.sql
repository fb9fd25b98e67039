ALTER TABLE "signals" ADD COLUMN "xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
CREATE INDEX "signals_subject_xid_idx" ON "signals" USING btree ("subject_id","xid");