-- Token exchange (RFC 8693). A grant made by an exchange names the grant of the token it was
-- exchanged from (revoking that one revokes this one), the `act` claim of its tokens (JSON,
-- the current actor outermost) and the client acting now; the audit row of the exchange names
-- that client too, so "everything agent X did for user Y" is one indexed query. NULL for
-- every other grant.
ALTER TABLE grant_view ADD COLUMN source_grant TEXT;
ALTER TABLE grant_view ADD COLUMN act TEXT;
ALTER TABLE grant_view ADD COLUMN acting_client_id TEXT;
CREATE INDEX grant_view_source_grant ON grant_view (source_grant);
ALTER TABLE audit_log ADD COLUMN acting_client_id TEXT;
CREATE INDEX audit_log_acting_client ON audit_log (acting_client_id, global_position);
