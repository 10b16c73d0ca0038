"""The second HTTP baseline: the simplest honest DRF project doing a session's job.

A project of its own (settings, URLconf, one app), nothing shared with omniman: token
auth, SecurityMiddleware and CommonMiddleware only, one row per session with its lines
in a jsonb column, the ops checked by a DRF serializer, then ``SELECT ... FOR UPDATE``
and one ``UPDATE`` (5 statements per modify with BEGIN and COMMIT, 2 per read)."""
