-- Signed checkpoints and archived workflow histories are evidence, like the audit log: the
-- database refuses to change or remove them.
CREATE OR REPLACE FUNCTION evidence_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_update_delete
  BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_truncate
  BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
--> statement-breakpoint
CREATE TRIGGER workflow_history_archive_no_update_delete
  BEFORE UPDATE OR DELETE ON workflow_history_archive
  FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change();
--> statement-breakpoint
CREATE TRIGGER workflow_history_archive_no_truncate
  BEFORE TRUNCATE ON workflow_history_archive
  FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change();
