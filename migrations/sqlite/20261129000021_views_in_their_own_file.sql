-- The read side's tables move out of the log's file into a file of their own
-- (`<store>-views`, attached to every connection as `views` before migrations run; see
-- projections/src/views_file.rs): a rebuild then builds a new views file beside the store and
-- switches to it, instead of copying every row back into the store under its write lock.
--
-- What the views held is carried over, so an upgraded server does not start by projecting its
-- whole history again. The columns are in the same order on both sides (migrations/sqlite-views/
-- schema.sql is these tables as the migrations before this one left them). The views file is
-- emptied first: should the move run again (a crash after the views file's commit and before
-- this file's, as two files in WAL mode do not commit together), it starts over; and if this
-- file committed and the views file did not, the views are simply projected again from the log.

-- The projections' checkpoints go with their views (a views file is whole: rows and how far
-- they are built); those of the readers that act on the log (the ledger's linker, the cascade
-- and back-channel reactors) stay here, beside what they did.
DELETE FROM views.projection_checkpoints;
INSERT INTO views.projection_checkpoints SELECT * FROM main.projection_checkpoints
    WHERE projection IN ('clients', 'users', 'grants', 'consents', 'audit', 'sessions',
                         'connected_apps', 'social_logins');
DELETE FROM main.projection_checkpoints
    WHERE projection IN ('clients', 'users', 'grants', 'consents', 'audit', 'sessions',
                         'connected_apps', 'social_logins');

DELETE FROM views.client_view;
INSERT INTO views.client_view SELECT * FROM main.client_view;
DROP TABLE main.client_view;

DELETE FROM views.user_view;
INSERT INTO views.user_view SELECT * FROM main.user_view;
DROP TABLE main.user_view;

DELETE FROM views.grant_view;
INSERT INTO views.grant_view SELECT * FROM main.grant_view;
DROP TABLE main.grant_view;

DELETE FROM views.token_view;
INSERT INTO views.token_view SELECT * FROM main.token_view;
DROP TABLE main.token_view;

DELETE FROM views.consent_view;
INSERT INTO views.consent_view SELECT * FROM main.consent_view;
DROP TABLE main.consent_view;

DELETE FROM views.audit_log;
INSERT INTO views.audit_log SELECT * FROM main.audit_log;
DROP TABLE main.audit_log;

DELETE FROM views.audit_grant_subjects;
INSERT INTO views.audit_grant_subjects SELECT * FROM main.audit_grant_subjects;
DROP TABLE main.audit_grant_subjects;

DELETE FROM views.usage_events_hourly;
INSERT INTO views.usage_events_hourly SELECT * FROM main.usage_events_hourly;
DROP TABLE main.usage_events_hourly;

DELETE FROM views.session_view;
INSERT INTO views.session_view SELECT * FROM main.session_view;
DROP TABLE main.session_view;

DELETE FROM views.connected_app_view;
INSERT INTO views.connected_app_view SELECT * FROM main.connected_app_view;
DROP TABLE main.connected_app_view;

DELETE FROM views.app_connection_view;
INSERT INTO views.app_connection_view SELECT * FROM main.app_connection_view;
DROP TABLE main.app_connection_view;

DELETE FROM views.social_login_view;
INSERT INTO views.social_login_view SELECT * FROM main.social_login_view;
DROP TABLE main.social_login_view;

DELETE FROM views.identity_view;
INSERT INTO views.identity_view SELECT * FROM main.identity_view;
DROP TABLE main.identity_view;
