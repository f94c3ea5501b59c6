// Package fields holds what a project adds to its tickets: custom fields
// (text, number, date, one of a list), relations between tickets (blocks,
// duplicates, relates to) and ticket templates. Definitions are events on
// the project aggregate; values and relations are events on the tickets'
// own aggregates, so a ticket's history shows them.
package fields

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/internal/tickets"
)

// Payloads, stored under stable names.
type (
	// FieldDefined adds a field to a project (project aggregate).
	FieldDefined struct {
		Project string   `json:"project"`
		Name    string   `json:"name"`
		Kind    string   `json:"kind"`
		Choices []string `json:"choices,omitempty"`
	}
	// FieldChanged changes a field's kind or choices (project aggregate).
	FieldChanged struct {
		Project string   `json:"project"`
		Name    string   `json:"name"`
		Kind    string   `json:"kind"`
		Choices []string `json:"choices,omitempty"`
	}
	// FieldRemoved takes a field off a project (project aggregate); the
	// values set on tickets stay in the log and are no longer shown.
	FieldRemoved struct {
		Project string `json:"project"`
		Name    string `json:"name"`
	}
	// FieldSet sets a field of a ticket (ticket aggregate); empty clears it.
	FieldSet struct {
		Field string `json:"field"`
		Value string `json:"value"`
	}
	// RelationAdded links the ticket to other (ticket aggregate); the
	// other ticket gets the inverse kind in the same command.
	RelationAdded struct {
		Kind  string `json:"kind"`
		Other int64  `json:"other"`
	}
	// RelationRemoved undoes a RelationAdded, on both sides.
	RelationRemoved struct {
		Kind  string `json:"kind"`
		Other int64  `json:"other"`
	}
	// TemplateDefined adds or replaces a ticket template (project aggregate).
	TemplateDefined struct {
		Project string `json:"project"`
		Name    string `json:"name"`
		Body    string `json:"body"`
	}
	// TemplateRemoved removes a ticket template (project aggregate).
	TemplateRemoved struct {
		Project string `json:"project"`
		Name    string `json:"name"`
	}
)

// Types are the event types of this package.
type Types struct {
	Defined         events.Type[FieldDefined]
	Changed         events.Type[FieldChanged]
	Removed         events.Type[FieldRemoved]
	Set             events.Type[FieldSet]
	RelationAdded   events.Type[RelationAdded]
	RelationRemoved events.Type[RelationRemoved]
	TemplateDefined events.Type[TemplateDefined]
	TemplateRemoved events.Type[TemplateRemoved]
}

// Limits.
const (
	MaxName      = 40
	MaxChoices   = 50
	MaxChoice    = 40
	MaxValue     = 200 // a text field's value
	MaxFields    = 30  // fields per project
	MaxTemplate  = 60  // a template's name
	MaxBody      = tickets.MaxBody
	MaxTemplates = 30
	MaxRelations = 100 // relations per ticket
)

// Kinds of field.
const (
	Text   = "text"
	Number = "number"
	Date   = "date"
	OneOf  = "one_of"
)

// Kinds lists the kinds in the order the form offers them.
var Kinds = []string{Text, Number, Date, OneOf}

// Relation kinds and their inverses.
var inverse = map[string]string{
	"blocks": "blocked_by", "blocked_by": "blocks",
	"duplicates": "duplicated_by", "duplicated_by": "duplicates",
	"relates_to": "relates_to",
}

// RelationKinds lists the relation kinds in the order the form offers them.
var RelationKinds = []string{"blocks", "blocked_by", "duplicates", "duplicated_by", "relates_to"}

// RelationWords is how a page says a relation kind.
var RelationWords = map[string]string{
	"blocks": "Blocks", "blocked_by": "Blocked by", "duplicates": "Duplicates",
	"duplicated_by": "Duplicated by", "relates_to": "Relates to",
}

// Register defines the event types and their projection in reg. The
// ticket-aggregate events also move the ticket's version and updated time
// in the tickets table (tickets.Touches).
func Register(reg *events.Registry) Types {
	t := Types{
		Defined:         events.Define[FieldDefined](reg, "field_defined", 1),
		Changed:         events.Define[FieldChanged](reg, "field_changed", 1),
		Removed:         events.Define[FieldRemoved](reg, "field_removed", 1),
		Set:             events.Define[FieldSet](reg, "ticket_field_set", 1),
		RelationAdded:   events.Define[RelationAdded](reg, "relation_added", 1),
		RelationRemoved: events.Define[RelationRemoved](reg, "relation_removed", 1),
		TemplateDefined: events.Define[TemplateDefined](reg, "template_defined", 1),
		TemplateRemoved: events.Define[TemplateRemoved](reg, "template_removed", 1),
	}
	tickets.Touches(reg, t.Set)
	tickets.Touches(reg, t.RelationAdded)
	tickets.Touches(reg, t.RelationRemoved)

	p := reg.NewProjection("fields", "project_fields", "ticket_fields")
	events.On(reg, p, t.Defined, func(ctx context.Context, q events.Querier, e *events.Event, d FieldDefined) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO project_fields (project, name, kind, choices, seq) VALUES (?, ?, ?, ?, ?)`,
			d.Project, d.Name, d.Kind, choicesJSON(d.Choices), e.Position); err != nil {
			return err
		}
		return rekey(ctx, q, d.Name)
	})
	events.On(reg, p, t.Changed, func(ctx context.Context, q events.Querier, e *events.Event, d FieldChanged) error {
		if _, err := q.ExecContext(ctx, `UPDATE project_fields SET kind = ?, choices = ? WHERE project = ? AND name = ?`,
			d.Kind, choicesJSON(d.Choices), d.Project, d.Name); err != nil {
			return err
		}
		return rekey(ctx, q, d.Name)
	})
	events.On(reg, p, t.Removed, func(ctx context.Context, q events.Querier, e *events.Event, d FieldRemoved) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM project_fields WHERE project = ? AND name = ?`, d.Project, d.Name); err != nil {
			return err
		}
		return rekey(ctx, q, d.Name)
	})
	events.On(reg, p, t.Set, func(ctx context.Context, q events.Querier, e *events.Event, d FieldSet) error {
		if d.Value == "" {
			_, err := q.ExecContext(ctx, `DELETE FROM ticket_fields WHERE ticket_id = ? AND name = ?`, e.AggregateID, d.Field)
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO ticket_fields (ticket_id, name, value, sort_key) VALUES (?, ?, ?,
			(SELECT `+sortKeySQL("?3")+` FROM project_fields d WHERE d.name = ?2 ORDER BY d.seq LIMIT 1))
			ON CONFLICT (ticket_id, name) DO UPDATE SET value = excluded.value, sort_key = excluded.sort_key`, e.AggregateID, d.Field, d.Value)
		return err
	})

	r := reg.NewProjection("relations", "ticket_relations")
	events.On(reg, r, t.RelationAdded, func(ctx context.Context, q events.Querier, e *events.Event, d RelationAdded) error {
		_, err := q.ExecContext(ctx, `INSERT INTO ticket_relations (ticket_id, kind, other, position) VALUES (?, ?, ?, ?)`,
			e.AggregateID, d.Kind, d.Other, e.Position)
		return err
	})
	events.On(reg, r, t.RelationRemoved, func(ctx context.Context, q events.Querier, e *events.Event, d RelationRemoved) error {
		_, err := q.ExecContext(ctx, `DELETE FROM ticket_relations WHERE ticket_id = ? AND kind = ? AND other = ?`, e.AggregateID, d.Kind, d.Other)
		return err
	})

	tp := reg.NewProjection("templates", "project_templates")
	events.On(reg, tp, t.TemplateDefined, func(ctx context.Context, q events.Querier, e *events.Event, d TemplateDefined) error {
		_, err := q.ExecContext(ctx, `INSERT INTO project_templates (project, name, body) VALUES (?, ?, ?)
			ON CONFLICT (project, name) DO UPDATE SET body = excluded.body`, d.Project, d.Name, d.Body)
		return err
	})
	events.On(reg, tp, t.TemplateRemoved, func(ctx context.Context, q events.Querier, e *events.Event, d TemplateRemoved) error {
		_, err := q.ExecContext(ctx, `DELETE FROM project_templates WHERE project = ? AND name = ?`, d.Project, d.Name)
		return err
	})
	return t
}

func choicesJSON(cs []string) string {
	if cs == nil {
		cs = []string{}
	}
	b, _ := json.Marshal(cs)
	return string(b)
}

// Field is one field a project defines.
type Field struct {
	Project string   `json:"project"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Choices []string `json:"choices"`
}

var nameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} _-]*$`)

// validName checks a field's name: 1 to 40 letters, digits, spaces, _ and -.
func validName(field, name string) error {
	if name == "" {
		return errs.Field(field, "A field needs a name.")
	}
	if err := input.Line(field, "The name", name, MaxName); err != nil {
		return err
	}
	if !nameRE.MatchString(name) {
		return errs.Field(field, "A field's name is letters, digits, spaces, _ and -, starting with a letter or digit.")
	}
	return nil
}

// ParseChoices splits one choice a line (or comma separated), trimming
// and dropping empty ones.
func ParseChoices(s string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// Validate checks a definition, naming each form field at fault.
func (f Field) Validate() error {
	fs := map[string]string{}
	if err := validName("name", f.Name); err != nil {
		fs["name"] = errs.Fields(err)["name"]
	}
	if !slices.Contains(Kinds, f.Kind) {
		fs["kind"] = "Choose text, number, date or one of a list."
	}
	if f.Kind == OneOf {
		switch {
		case len(f.Choices) == 0:
			fs["choices"] = "A one-of-a-list field needs at least one choice."
		case len(f.Choices) > MaxChoices:
			fs["choices"] = fmt.Sprintf("At most %d choices; there are %d.", MaxChoices, len(f.Choices))
		}
		seen := map[string]bool{}
		for _, c := range f.Choices {
			if err := input.Line("choices", "A choice", c, MaxChoice); err != nil {
				fs["choices"] = errs.Fields(err)["choices"]
				break
			}
			if seen[c] {
				fs["choices"] = fmt.Sprintf("The choice %q is given twice.", c)
				break
			}
			seen[c] = true
		}
	} else if len(f.Choices) > 0 {
		fs["choices"] = "Only a one-of-a-list field has choices."
	}
	if len(fs) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fs}
	}
	return nil
}

// sortKeySQL is the SQL of a value's sort key under the definition d
// (a project_fields row): the number for a number field, the place of the
// value among the choices for a one-of field (NULL if it is not one), the
// text for text and dates. The definition is the oldest of the name, in
// whichever project, so one order holds across projects. The list sorted
// by a field reads ticket_fields' index on (name, sort_key) in order
// (ListClauses).
func sortKeySQL(value string) string {
	return `CASE d.kind WHEN '` + Number + `' THEN CAST(` + value + ` AS REAL)
		WHEN '` + OneOf + `' THEN (SELECT CAST(j.key AS INTEGER) FROM json_each(d.choices) j WHERE j.value = ` + value + `)
		ELSE ` + value + ` END`
}

// rekey sets the sort keys of field name's values from the oldest
// definition of it now (NULL once there is none). Only this projection's
// own tables are read, so replay and deep verify may rebuild it alone.
func rekey(ctx context.Context, q events.Querier, name string) error {
	_, err := q.ExecContext(ctx, `UPDATE ticket_fields SET sort_key = (SELECT `+sortKeySQL("ticket_fields.value")+`
		FROM project_fields d WHERE d.name = ticket_fields.name ORDER BY d.seq LIMIT 1)
		WHERE name = ?`, name)
	return err
}

// Check validates a value for the field; "" (cleared) is always valid.
// formField names the form field the message goes beside.
func (f Field) Check(formField, v string) error {
	if v == "" {
		return nil
	}
	switch f.Kind {
	case Number:
		if len(v) > 40 {
			return errs.Field(formField, "%s is a number; %q is too long to be one.", f.Name, v)
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n != n || n > 1e300 || n < -1e300 {
			return errs.Field(formField, "%s is a number, such as 3 or 2.5; %q is not.", f.Name, v)
		}
	case Date:
		if _, err := time.Parse(time.DateOnly, v); err != nil || len(v) != 10 {
			return errs.Field(formField, "%s is a date written YYYY-MM-DD, such as 2026-11-23; %q is not.", f.Name, v)
		}
	case OneOf:
		if !slices.Contains(f.Choices, v) {
			return errs.Field(formField, "%s is one of %s; %q is not.", f.Name, strings.Join(f.Choices, ", "), v)
		}
	default:
		if err := input.Line(formField, f.Name, v, MaxValue); err != nil {
			return err
		}
	}
	return nil
}

// validTemplate checks a template's name and body.
func validTemplate(name, body string) error {
	fs := map[string]string{}
	if strings.TrimSpace(name) == "" {
		fs["name"] = "A template needs a name."
	} else if err := input.Line("name", "The name", name, MaxTemplate); err != nil {
		fs["name"] = errs.Fields(err)["name"]
	}
	if strings.TrimSpace(body) == "" {
		fs["body"] = "A template needs a body."
	} else if err := input.Text("body", "The body", body, MaxBody); err != nil {
		fs["body"] = errs.Fields(err)["body"]
	}
	if len(fs) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fs}
	}
	return nil
}

var _ = utf8.RuneCountInString
var _ = access.Default
