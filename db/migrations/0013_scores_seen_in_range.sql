-- signals_seen now counts the signals of the pair's own range (its windows and baselines), no longer
-- every signal of the subject: stored counts of the old kind would hold back every new computation.
UPDATE "subject_policy_scores" SET "signals_seen" = 0;
