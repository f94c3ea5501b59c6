-- +goose Up
-- A sort key for each field value (internal/fields), so the ticket list
-- sorted by a field reads its index in order instead of computing and
-- sorting a key for every ticket: under the oldest definition of the
-- field's name, the number for a number field, the place of the value
-- among the choices for a one-of field (NULL if it is not one), the text
-- for text and dates; NULL when no project defines the name. Kept by the
-- fields projection, so replay rebuilds it.
ALTER TABLE ticket_fields ADD COLUMN sort_key;
UPDATE ticket_fields SET sort_key = (
    SELECT CASE d.kind
        WHEN 'number' THEN CAST(ticket_fields.value AS REAL)
        WHEN 'one_of' THEN (SELECT CAST(j.key AS INTEGER) FROM json_each(d.choices) j WHERE j.value = ticket_fields.value)
        ELSE ticket_fields.value END
    FROM project_fields d WHERE d.name = ticket_fields.name ORDER BY d.seq LIMIT 1);
CREATE INDEX ticket_fields_sort_idx ON ticket_fields(name, sort_key, ticket_id DESC);

-- +goose Down
DROP INDEX ticket_fields_sort_idx;
ALTER TABLE ticket_fields DROP COLUMN sort_key;
