package erase

import (
	"encoding/json"
	"fmt"
)

// Fields lists, for every stored event type, the payload fields that hold
// personal data or typed text: erasing an event removes exactly these and
// keeps the rest of its payload (the structural remnant: ids, numbers,
// roles, times). A type with no personal field maps to nil. Every
// registered type must be here: TestEveryTypeIsClassified walks the
// registry, so a new event type cannot leak by being forgotten.
//
// Decisions: labels, project slugs and names, webhook addresses and event
// filters, roles and ids are structure, kept; a person's names, email
// address, ticket titles and descriptions, comment bodies, invitation notes
// and the names people give their tokens and passkeys are personal.
var Fields = map[string][]string{
	// tickets
	"ticket_opened":     {"title", "body", "imported"}, // imported: the login on the other tracker
	"ticket_edited":     {"title", "body"},
	"comment_added":     {"body", "imported"},
	"comment_edited":    {"body"},
	"comment_deleted":   nil,
	"ticket_assigned":   nil, // a person id
	"ticket_unassigned": nil,
	"ticket_closed":     nil,
	"ticket_reopened":   nil,
	// people
	"user_registered":      {"username", "display_name"},
	"display_name_changed": {"display_name"},
	"username_changed":     {"from", "to"},
	"password_changed":     nil,
	"password_reset":       nil,
	"passkey_added":        {"name"},
	"passkey_removed":      {"name"},
	"token_created":        {"name"},
	"token_revoked":        nil,
	// the site
	"role_granted":          nil,
	"role_revoked":          nil,
	"registration_mode_set": nil,
	"invitation_created":    {"note"},
	"invitation_used":       nil,
	"invitation_revoked":    nil,
	// projects
	"project_created":      nil, // a project's name names the project, not a person
	"project_role_granted": nil,
	"project_role_revoked": nil,
	"project_setting_set":  nil,
	// notifications
	"ticket_watched":     nil,
	"ticket_unwatched":   nil,
	"notifications_read": nil,
	"email_set":          {"email"},
	// webhooks: an address and a filter, set by a project's owner
	"webhook_created":  nil,
	"webhook_changed":  nil,
	"webhook_disabled": nil,
	"webhook_enabled":  nil,
	// the list: a person's saved views (their names and queries are typed)
	"view_saved":   {"name", "query"},
	"view_deleted": {"name"},
	// attachments: the file's name is typed; the hash, type and size are
	// structure (the file itself is not a payload: docs/privacy.md)
	"attachment_added": {"name"},
	// people imported from another tracker (internal/importer)
	"person_imported": {"login", "username", "display_name"},
	"person_claimed":  nil,
	// custom fields, relations and templates (internal/fields): a field's
	// definition is the project's structure; values and templates are typed
	"field_defined":    nil,
	"field_changed":    nil,
	"field_removed":    nil,
	"ticket_field_set": {"value"},
	"relation_added":   nil,
	"relation_removed": nil,
	"template_defined": {"body"},
	"template_removed": nil,
	// the log's own: a v2 log's first event names the old log's head
	// and checkpoint (web migrate-v2)
	"log_continued": nil,
	// erasure itself holds no personal data (the reason is checked short
	// and the docs say not to put any in it)
	"erased": nil,
}

// Personal reports whether events of type typ hold any personal field.
func Personal(typ string) bool { return len(Fields[typ]) > 0 }

// Kept is the structural remnant of an event's payload: data without the
// personal fields of its type (keys sorted, as encoding/json writes maps).
func Kept(typ string, data []byte) ([]byte, error) {
	fields, ok := Fields[typ]
	if !ok {
		return nil, fmt.Errorf("erase: event type %q is not classified", typ)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("erase: payload of %s: %w", typ, err)
	}
	for _, f := range fields {
		delete(m, f)
	}
	return json.Marshal(m)
}
