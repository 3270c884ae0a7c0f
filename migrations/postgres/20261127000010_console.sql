-- The console lists clients by name (keyset: name, then id).
CREATE INDEX client_view_by_name ON client_view (name, client_id);
