-- Resource indicators (RFC 8707): the resources an access token is for, space-separated, as
-- introspection reports them in `aud`. NULL for tokens without a restriction (and for every
-- token issued before resources existed).
ALTER TABLE token_view ADD COLUMN audience TEXT;
