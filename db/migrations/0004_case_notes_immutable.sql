-- Notes of a case are immutable once written: the database refuses to change or remove them.
CREATE OR REPLACE FUNCTION case_notes_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'case notes are immutable: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER case_notes_no_update_delete
  BEFORE UPDATE OR DELETE ON case_notes
  FOR EACH ROW EXECUTE FUNCTION case_notes_refuse_change();
--> statement-breakpoint
CREATE TRIGGER case_notes_no_truncate
  BEFORE TRUNCATE ON case_notes
  FOR EACH STATEMENT EXECUTE FUNCTION case_notes_refuse_change();
