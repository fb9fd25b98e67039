-- A notice template version is immutable once written: notices point at the exact version they
-- used, so the database refuses to change or remove one (a new version is a new row).
CREATE OR REPLACE FUNCTION notice_template_versions_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'notice template versions are immutable: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER notice_template_versions_no_update_delete
  BEFORE UPDATE OR DELETE ON notice_template_versions
  FOR EACH ROW EXECUTE FUNCTION notice_template_versions_refuse_change();
--> statement-breakpoint
CREATE TRIGGER notice_template_versions_no_truncate
  BEFORE TRUNCATE ON notice_template_versions
  FOR EACH STATEMENT EXECUTE FUNCTION notice_template_versions_refuse_change();
