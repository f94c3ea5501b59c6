package importer

import (
	"context"
	"fmt"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
)

// Claim records that the real person by stands for the imported person
// imported (person_claimed, on the imported person's aggregate): pages
// then name by for the imported person's tickets and comments. Only site
// admins may (and the operator, as system). A claim may be made again to
// correct it; an imported person cannot claim, nor be claimed by another
// imported one.
func (im *Importer) Claim(ctx context.Context, actor, imported, by, cmdID string) error {
	_, err := im.Writer.Do(ctx, events.Command{
		ID: cmdID, Actor: actor, Kind: "claim",
		Fingerprint: events.Fingerprint("claim", imported, by),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if actor != auth.System {
				ok, err := auth.IsAdmin(ctx, tx.Q(), actor)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, errs.E(errs.Forbidden, "Only a site admin may say who an imported person is.")
				}
			}
			var from, claimed string
			err := tx.Q().QueryRowContext(ctx, `SELECT imported_from, claimed_by FROM users WHERE id = ?`, imported).Scan(&from, &claimed)
			if err != nil {
				return nil, errs.E(errs.NotFound, "There is no such person.")
			}
			if from == "" {
				return nil, errs.Field("imported", "This person was not imported from another tracker.")
			}
			var byFrom string
			if err := tx.Q().QueryRowContext(ctx, `SELECT imported_from FROM users WHERE id = ?`, by).Scan(&byFrom); err != nil {
				return nil, errs.Field("by", "There is no such person.")
			}
			if byFrom != "" {
				return nil, errs.Field("by", "Name a person with an account here, not another imported one.")
			}
			if claimed == by {
				return nil, errs.E(errs.Conflict, "They are already claimed by that person.")
			}
			return []events.Change{{AggregateType: "user", AggregateID: imported, Expect: events.Any,
				Events: []events.Pending{im.Types.Claimed.New(PersonClaimed{Imported: imported, By: by})}}}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	return nil
}
