-- +goose Up
-- Custom fields, relations and templates (internal/fields), rebuilt by replay.

-- The fields a project defines (field_defined, field_changed, field_removed
-- on the project aggregate). choices is a JSON array, for kind one_of.
CREATE TABLE project_fields (
    project TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    kind    TEXT    NOT NULL, -- text, number, date, one_of
    choices TEXT    NOT NULL DEFAULT '[]',
    seq     INTEGER NOT NULL, -- position of the defining event: the order shown
    PRIMARY KEY (project, name)
);

-- The value of each field set on a ticket (ticket_field_set); a cleared
-- field has no row. A removed field keeps its rows but is not shown.
CREATE TABLE ticket_fields (
    ticket_id INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, name)
);
CREATE INDEX ticket_fields_value_idx ON ticket_fields(name, value, ticket_id);

-- Relations, one row per side (relation_added on both tickets).
CREATE TABLE ticket_relations (
    ticket_id INTEGER NOT NULL,
    kind      TEXT    NOT NULL, -- blocks, blocked_by, duplicates, duplicated_by, relates_to
    other     INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, kind, other)
);

-- Ticket templates (template_defined, template_removed).
CREATE TABLE project_templates (
    project TEXT NOT NULL,
    name    TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (project, name)
);

-- +goose Down
DROP TABLE project_templates;
DROP TABLE ticket_relations;
DROP INDEX ticket_fields_value_idx;
DROP TABLE ticket_fields;
DROP TABLE project_fields;
