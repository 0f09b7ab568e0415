-- Three roles for Forklift on PostgreSQL (run once, as a superuser, on a new cluster):
--   forklift_owner   owns the database and its tables; migrations run as it
--                    (FORKLIFT_MIGRATION_DATABASE_URL);
--   forklift_app     what requests are served as (DATABASE_URL): no superuser, no BYPASSRLS,
--                    owns nothing and is a member of nothing, so row-level security binds it and
--                    no session setting it can change widens its view beyond one tenant;
--   forklift_system  the server's bookkeeping that crosses tenants (FORKLIFT_SYSTEM_DATABASE_URL):
--                    the guard, forks and their runs, audit, the catalog, the admins' read-only
--                    all-tenants view. BYPASSRLS, owns nothing (so it cannot change the schema).
-- forklift_app must never be granted forklift_system (the server refuses to start in
-- production when it can SET ROLE to it). Change the passwords for anything but a local trial.
CREATE ROLE forklift_owner LOGIN PASSWORD 'forklift_owner';
CREATE ROLE forklift_app LOGIN PASSWORD 'forklift_app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE forklift_system LOGIN PASSWORD 'forklift_system' NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE forklift OWNER forklift_owner;
\connect forklift
-- Tables the owner creates are usable (not owned) by the server's two roles; nobody else may
-- create objects in the schema.
ALTER SCHEMA public OWNER TO forklift_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO forklift_app, forklift_system;
ALTER DEFAULT PRIVILEGES FOR ROLE forklift_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO forklift_app, forklift_system;
ALTER DEFAULT PRIVILEGES FOR ROLE forklift_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO forklift_app, forklift_system;
