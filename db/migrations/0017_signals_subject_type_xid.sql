DROP INDEX "signals_subject_type_time_idx";--> statement-breakpoint
DROP INDEX "signals_subject_xid_idx";--> statement-breakpoint
CREATE INDEX "signals_subject_type_xid_idx" ON "signals" USING btree ("subject_id","type","xid");