package fields

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
)

// Service runs this package's commands through the writer.
type Service struct {
	Writer *events.Writer
	Types  Types
}

func (s *Service) onProject(ctx context.Context, actor, project, commandID, fp string, action access.Action, decide func(tx *events.Tx) (events.Pending, error)) error {
	_, err := s.Writer.Do(ctx, events.Command{ID: commandID, Actor: actor, Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := access.Can(ctx, tx.Q(), actor, action, project); err != nil {
				return nil, err
			}
			e, err := decide(tx)
			if err != nil {
				return nil, err
			}
			v, _, err := tx.Last(ctx, access.Aggregate, project)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: access.Aggregate, AggregateID: project, Expect: v, Events: []events.Pending{e}}}, nil
		}})
	return err
}

// Save defines a field in project (field_defined) or, when it exists,
// changes its kind and choices (field_changed); owners and admins may.
func (s *Service) Save(ctx context.Context, actor string, f Field, commandID string) error {
	fp := events.Fingerprint("save_field", append([]string{f.Project, f.Name, f.Kind}, f.Choices...)...)
	verr := f.Validate()
	return s.onProject(ctx, actor, f.Project, commandID, fp, access.ManageFields, func(tx *events.Tx) (events.Pending, error) {
		if verr != nil {
			return events.Pending{}, verr
		}
		old, err := Get(ctx, tx.Q(), f.Project, f.Name)
		switch errs.Code(err) {
		case errs.NotFound:
			fs, err := List(ctx, tx.Q(), f.Project)
			if err != nil {
				return events.Pending{}, err
			}
			if len(fs) >= MaxFields {
				return events.Pending{}, errs.Field("name", "A project has at most %d fields.", MaxFields)
			}
			return s.Types.Defined.New(FieldDefined{Project: f.Project, Name: f.Name, Kind: f.Kind, Choices: f.Choices}), nil
		case "":
		default:
			return events.Pending{}, err
		}
		if old.Kind == f.Kind && slices.Equal(old.Choices, f.Choices) {
			return events.Pending{}, errs.Field("name", "The field %s is like that already.", f.Name)
		}
		return s.Types.Changed.New(FieldChanged{Project: f.Project, Name: f.Name, Kind: f.Kind, Choices: f.Choices}), nil
	})
}

// Remove takes a field off project (field_removed).
func (s *Service) Remove(ctx context.Context, actor, project, name, commandID string) error {
	return s.onProject(ctx, actor, project, commandID, events.Fingerprint("remove_field", project, name), access.ManageFields, func(tx *events.Tx) (events.Pending, error) {
		if _, err := Get(ctx, tx.Q(), project, name); err != nil {
			if errs.Code(err) == errs.NotFound {
				return events.Pending{}, errs.Field("name", "This project has no field called %q.", name)
			}
			return events.Pending{}, err
		}
		return s.Types.Removed.New(FieldRemoved{Project: project, Name: name}), nil
	})
}

// SaveTemplate defines or replaces a ticket template (template_defined).
func (s *Service) SaveTemplate(ctx context.Context, actor, project, name, body, commandID string) error {
	name = strings.TrimSpace(name)
	verr := validTemplate(name, body)
	return s.onProject(ctx, actor, project, commandID, events.Fingerprint("save_template", project, name, body), access.ManageTemplates, func(tx *events.Tx) (events.Pending, error) {
		if verr != nil {
			return events.Pending{}, verr
		}
		ts, err := Templates(ctx, tx.Q(), project)
		if err != nil {
			return events.Pending{}, err
		}
		i := slices.IndexFunc(ts, func(t Template) bool { return t.Name == name })
		if i < 0 && len(ts) >= MaxTemplates {
			return events.Pending{}, errs.Field("name", "A project has at most %d templates.", MaxTemplates)
		}
		if i >= 0 && ts[i].Body == body {
			return events.Pending{}, errs.Field("body", "The template %s is like that already.", name)
		}
		return s.Types.TemplateDefined.New(TemplateDefined{Project: project, Name: name, Body: body}), nil
	})
}

// RemoveTemplate removes a ticket template (template_removed).
func (s *Service) RemoveTemplate(ctx context.Context, actor, project, name, commandID string) error {
	return s.onProject(ctx, actor, project, commandID, events.Fingerprint("remove_template", project, name), access.ManageTemplates, func(tx *events.Tx) (events.Pending, error) {
		ts, err := Templates(ctx, tx.Q(), project)
		if err != nil {
			return events.Pending{}, err
		}
		if !slices.ContainsFunc(ts, func(t Template) bool { return t.Name == name }) {
			return events.Pending{}, errs.Field("name", "This project has no template called %q.", name)
		}
		return s.Types.TemplateRemoved.New(TemplateRemoved{Project: project, Name: name}), nil
	})
}

// canEdit refuses actor unless they may edit ticket id (their own needs
// less than anyone's); it returns the ticket's project. hide answers
// not_found for a ticket the actor may not see.
func canEdit(ctx context.Context, q events.Querier, actor string, id int64, hide bool) (string, error) {
	var project, author string
	err := q.QueryRowContext(ctx, `SELECT project, author FROM tickets WHERE id = ?`, id).Scan(&project, &author)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.NotFound, "There is no ticket #%d.", id)
	}
	if err != nil {
		return "", fmt.Errorf("read ticket: %w", err)
	}
	if hide {
		// The other ticket of a relation: one the actor may not see is
		// not there for them, whatever else they may not do.
		if err := access.Can(ctx, q, actor, access.Read, project); err != nil {
			return "", errs.E(errs.NotFound, "There is no ticket #%d.", id)
		}
	}
	action := access.Edit
	if author == actor {
		action = access.EditOwnTicket
	}
	if err := access.Can(ctx, q, actor, action, project); err != nil {
		if errs.Code(err) == errs.NotFound {
			return "", errs.E(errs.NotFound, "There is no ticket #%d.", id)
		}
		return "", err
	}
	return project, nil
}

func ticketChange(ctx context.Context, tx *events.Tx, id int64, e events.Pending) (events.Change, error) {
	sid := strconv.FormatInt(id, 10)
	v, _, err := tx.Last(ctx, "ticket", sid)
	if err != nil {
		return events.Change{}, err
	}
	return events.Change{AggregateType: "ticket", AggregateID: sid, Expect: v, Events: []events.Pending{e}}, nil
}

// SetValue sets field of ticket id to value (ticket_field_set); empty
// clears it. Whoever may edit the ticket may.
func (s *Service) SetValue(ctx context.Context, actor string, id int64, field, value, commandID string) error {
	value = strings.TrimSpace(value)
	fp := events.Fingerprint("set_field", strconv.FormatInt(id, 10), field, value)
	_, err := s.Writer.Do(ctx, events.Command{ID: commandID, Actor: actor, Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			project, err := canEdit(ctx, tx.Q(), actor, id, false)
			if err != nil {
				return nil, err
			}
			f, err := Get(ctx, tx.Q(), project, field)
			if err != nil {
				return nil, err
			}
			if err := f.Check("value", value); err != nil {
				return nil, err
			}
			var cur string
			err = tx.Q().QueryRowContext(ctx, `SELECT value FROM ticket_fields WHERE ticket_id = ? AND name = ?`, id, field).Scan(&cur)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("read field value: %w", err)
			}
			if cur == value {
				return nil, errs.Field("value", "%s is %q already.", field, value)
			}
			c, err := ticketChange(ctx, tx, id, s.Types.Set.New(FieldSet{Field: field, Value: value}))
			return []events.Change{c}, err
		}})
	return err
}

// Relate adds a relation of kind from ticket id to other, and its inverse
// from other to id, in one command; whoever may edit both tickets may.
func (s *Service) Relate(ctx context.Context, actor string, id int64, kind string, other int64, commandID string) error {
	return s.relation(ctx, actor, id, kind, other, commandID, true)
}

// Unrelate removes the relation of kind from id to other, on both sides.
func (s *Service) Unrelate(ctx context.Context, actor string, id int64, kind string, other int64, commandID string) error {
	return s.relation(ctx, actor, id, kind, other, commandID, false)
}

func (s *Service) relation(ctx context.Context, actor string, id int64, kind string, other int64, commandID string, add bool) error {
	verb := "relate"
	if !add {
		verb = "unrelate"
	}
	fp := events.Fingerprint(verb, strconv.FormatInt(id, 10), kind, strconv.FormatInt(other, 10))
	_, err := s.Writer.Do(ctx, events.Command{ID: commandID, Actor: actor, Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if _, err := canEdit(ctx, tx.Q(), actor, id, false); err != nil {
				return nil, err
			}
			inv, ok := inverse[kind]
			if !ok {
				return nil, errs.Field("kind", "Choose blocks, blocked by, duplicates, duplicated by or relates to.")
			}
			if other == id {
				return nil, errs.Field("other", "A ticket cannot be related to itself.")
			}
			if other < 1 {
				return nil, errs.Field("other", "Give the other ticket's number.")
			}
			if _, err := canEdit(ctx, tx.Q(), actor, other, true); err != nil {
				if errs.Code(err) == errs.NotFound {
					return nil, errs.Field("other", "There is no ticket #%d, or you may not see it.", other)
				}
				return nil, err
			}
			var n int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM ticket_relations WHERE ticket_id = ? AND kind = ? AND other = ?`, id, kind, other).Scan(&n); err != nil {
				return nil, fmt.Errorf("read relations: %w", err)
			}
			var a, b events.Pending
			if add {
				if n > 0 {
					return nil, errs.Field("other", "#%d %s #%d already.", id, strings.ToLower(RelationWords[kind]), other)
				}
				var total int
				if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM ticket_relations WHERE ticket_id IN (?, ?) GROUP BY ticket_id ORDER BY 1 DESC LIMIT 1`, id, other).Scan(&total); err != nil && !errors.Is(err, sql.ErrNoRows) {
					return nil, fmt.Errorf("count relations: %w", err)
				}
				if total >= MaxRelations {
					return nil, errs.Field("other", "A ticket has at most %d relations.", MaxRelations)
				}
				a, b = s.Types.RelationAdded.New(RelationAdded{Kind: kind, Other: other}), s.Types.RelationAdded.New(RelationAdded{Kind: inv, Other: id})
			} else {
				if n == 0 {
					return nil, errs.Field("other", "#%d has no such relation to #%d.", id, other)
				}
				a, b = s.Types.RelationRemoved.New(RelationRemoved{Kind: kind, Other: other}), s.Types.RelationRemoved.New(RelationRemoved{Kind: inv, Other: id})
			}
			ca, err := ticketChange(ctx, tx, id, a)
			if err != nil {
				return nil, err
			}
			cb, err := ticketChange(ctx, tx, other, b)
			return []events.Change{ca, cb}, err
		}})
	return err
}
