DROP INDEX "cases_list_idx";--> statement-breakpoint
DROP INDEX "cases_region_status_idx";--> statement-breakpoint
DROP INDEX "cases_region_severity_idx";--> statement-breakpoint
DROP INDEX "cases_status_idx";--> statement-breakpoint
DROP INDEX "cases_owner_idx";--> statement-breakpoint
CREATE INDEX "cases_list_idx" ON "cases" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "cases_region_status_idx" ON "cases" USING btree ("region","status","created_at","id");--> statement-breakpoint
CREATE INDEX "cases_region_severity_idx" ON "cases" USING btree ("region","severity","created_at","id");--> statement-breakpoint
CREATE INDEX "cases_status_idx" ON "cases" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "cases_owner_idx" ON "cases" USING btree ("owner","created_at","id");