package tickets

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"braid/internal/auth"
	"braid/internal/web"
)

// The JSON answers of the ticket commands (docs/api.md): a script that
// sent JSON (or a token, or Accept: application/json) gets the resource
// it made or changed, never a redirect.

// ticketJSON answers the ticket as GET /tickets/{id} does for JSON: the
// ticket with its author's and assignee's usernames, the position it is
// shown as of (0: now) and every person it names.
func (h *Handlers) ticketJSON(c echo.Context, status int, t Ticket, at int64) error {
	ctx := c.Request().Context()
	ids := []string{t.Author, t.Assignee}
	for _, cm := range t.Comments {
		ids = append(ids, cm.Author)
	}
	names, err := auth.Names(ctx, h.Env.DB.Read, ids)
	if err != nil {
		return err
	}
	type person struct {
		Username    string `json:"username"`
		DisplayName string `json:"display_name"`
	}
	people := make(map[string]person, len(names))
	for id, p := range names {
		people[id] = person{p.Username, p.Name}
	}
	var fields map[string]string
	if h.FieldValues != nil && at == 0 {
		if fields, err = h.FieldValues(ctx, t.ID); err != nil {
			return err
		}
	}
	out := struct {
		Ticket
		AuthorUsername   string            `json:"author_username"`
		AssigneeUsername string            `json:"assignee_username,omitempty"`
		Fields           map[string]string `json:"fields,omitempty"`
	}{t, names[t.Author].Username, names[t.Assignee].Username, fields}
	return c.JSON(status, map[string]any{"ticket": out, "as_of_position": at, "people": people})
}

// answerTicket answers a command on ticket id with the ticket as it now
// stands, at status; 201 also names its place.
func (h *Handlers) answerTicket(c echo.Context, status int, id int64) error {
	t, err := Get(c.Request().Context(), h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		c.Response().Header().Set(echo.HeaderLocation, "/tickets/"+strconv.FormatInt(id, 10))
	}
	return h.ticketJSON(c, status, t, 0)
}

// CommentJSON is a comment as the API answers it.
type CommentJSON struct {
	Comment
	Ticket         int64  `json:"ticket"`
	AuthorUsername string `json:"author_username"`
}

// answerComment answers a command on comment cid of ticket id with the
// comment as it now stands; 201 also names its place.
func (h *Handlers) answerComment(c echo.Context, status int, id, cid int64) error {
	ctx := c.Request().Context()
	t, err := Get(ctx, h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	for _, cm := range t.Comments {
		if cm.ID != cid {
			continue
		}
		names, err := auth.Names(ctx, h.Env.DB.Read, []string{cm.Author})
		if err != nil {
			return err
		}
		if status == http.StatusCreated {
			c.Response().Header().Set(echo.HeaderLocation, "/tickets/"+strconv.FormatInt(id, 10)+"/comments/"+strconv.FormatInt(cid, 10))
		}
		return c.JSON(status, CommentJSON{Comment: cm, Ticket: id, AuthorUsername: names[cm.Author].Username})
	}
	return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10)) // not reached: the command just made it
}
