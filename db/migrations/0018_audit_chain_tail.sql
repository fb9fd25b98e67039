-- The audit chain's lock and tail in one call. A VOLATILE function takes a fresh snapshot for each
-- query it runs, so the tail read after the lock is granted sees the entry the previous holder
-- committed while this caller waited (one statement doing both would read a snapshot taken before
-- the wait). Saves the appender a round trip while it holds the lock.
CREATE OR REPLACE FUNCTION audit_chain_lock_tail(lock_key bigint)
RETURNS TABLE (hash text, seq bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  RETURN QUERY SELECT (SELECT a.hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1), nextval('audit_log_seq_seq');
END
$$;
