-- +goose Up
-- Projects and per-project roles (internal/access), rebuilt by replay.
-- The default project, slug main, has no row until an event names it: it
-- exists implicitly (access.Default), with "everyone signed in is a member"
-- on, so a site from before projects works as it did.
CREATE TABLE projects (
    slug            TEXT PRIMARY KEY,
    name            TEXT    NOT NULL,
    everyone_member INTEGER NOT NULL DEFAULT 0, -- 1: every signed-in person is a member
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE project_roles (
    project    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL, -- owner, member, reporter, viewer
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (project, user_id)
);
CREATE INDEX project_roles_user_idx ON project_roles(user_id, project);

-- The project a ticket belongs to (ticket_opened's project; main when the
-- event has none).
ALTER TABLE tickets ADD COLUMN project TEXT NOT NULL DEFAULT 'main';
CREATE INDEX tickets_project_idx ON tickets(project, status, id);

-- An invitation may admit its person straight into a project with a role.
ALTER TABLE invitations ADD COLUMN project TEXT NOT NULL DEFAULT '';

-- +goose Down
DROP INDEX tickets_project_idx;
ALTER TABLE tickets DROP COLUMN project;
ALTER TABLE invitations DROP COLUMN project;
DROP TABLE project_roles;
DROP TABLE projects;
