ALTER TABLE user_view ADD COLUMN last_login_at TEXT;
ALTER TABLE user_view ADD COLUMN last_failed_login_at TEXT;
