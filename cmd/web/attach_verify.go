package main

import (
	"context"
	"strings"

	"braid/internal/attach"
	"braid/internal/events"
	"braid/internal/web"
)

// attachCheck runs after the braid check: every blob an attachment_added
// event names must be present and hash to the event's SHA-256. A missing
// or altered file fails the check, named by its name, ticket and position.
// It returns how many distinct files it hashed.
func attachCheck(ctx context.Context, db *events.DB, rep *web.VerifyReport) (int, error) {
	if !rep.Intact {
		return 0, nil
	}
	n, problems, err := attach.Check(ctx, db.Read)
	if err != nil {
		return n, err
	}
	rep.Files = &web.FilesCheck{Checked: n}
	if len(problems) == 0 {
		return n, nil
	}
	var lines []string
	for _, p := range problems {
		lines = append(lines, p.String())
	}
	rep.Files.Problems = lines
	rep.Intact = false
	rep.Failure = &events.Failure{Position: problems[0].Position, Reason: strings.Join(lines, "; ")}
	return n, nil
}
