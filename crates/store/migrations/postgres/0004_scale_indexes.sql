-- Indexes for a large fleet, found by the 100,000-machine scale run
-- (docs/benchmarks.md).
--
-- The machine list's order (GET /api/v1/machines pages oldest registration
-- first), unfiltered and filtered by status or role: a page reads the
-- index in order instead of sorting the whole fleet.
CREATE INDEX machines_registered ON machines (registered_at, machine_id);
CREATE INDEX machines_status_registered ON machines (status, registered_at, machine_id);
CREATE INDEX machines_role_registered ON machines (role, registered_at, machine_id);
-- GET /metrics counts audit entries per action at every scrape: an
-- index-only scan instead of reading the whole log.
CREATE INDEX audit_log_action ON audit_log (action);
