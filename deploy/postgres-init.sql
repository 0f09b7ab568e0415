-- Two roles for Forklift on PostgreSQL (run once, as a superuser, on a new cluster):
--   forklift_owner  owns the database and its tables; migrations run as it
--                   (FORKLIFT_MIGRATION_DATABASE_URL);
--   forklift_app    what the server connects as (DATABASE_URL): no superuser, no BYPASSRLS,
--                   owns nothing, so row-level security binds it.
-- Change the passwords for anything but a local trial.
CREATE ROLE forklift_owner LOGIN PASSWORD 'forklift_owner';
CREATE ROLE forklift_app LOGIN PASSWORD 'forklift_app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE forklift OWNER forklift_owner;
\connect forklift
-- Tables the owner creates are usable (not owned) by the server's role.
ALTER SCHEMA public OWNER TO forklift_owner;
GRANT USAGE ON SCHEMA public TO forklift_app;
ALTER DEFAULT PRIVILEGES FOR ROLE forklift_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO forklift_app;
ALTER DEFAULT PRIVILEGES FOR ROLE forklift_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO forklift_app;
