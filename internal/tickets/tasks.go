package tickets

import (
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/markdown"
	"braid/templates"
)

// Tick ticks or unticks one task-list box of the description: fields
// index (from 0, in the order the page draws them), checked (1 or 0) and
// version (the version the page showed). Each tick is a ticket_edited.
func (h *Handlers) Tick(c echo.Context) error {
	index, ierr := strconv.Atoi(strings.TrimSpace(c.FormValue("index")))
	checked := c.FormValue("checked")
	version, verr := strconv.ParseInt(strings.TrimSpace(c.FormValue("version")), 10, 64)
	return h.command(c, func(id int64) error {
		switch {
		case ierr != nil || index < 0 || index > 1000:
			return errs.Field("index", "index is the task's number on the page, from 0; got %q.", c.FormValue("index"))
		case checked != "1" && checked != "0":
			return errs.Field("checked", "checked is 1 (done) or 0 (not done); got %q.", checked)
		case verr != nil:
			return errs.Field("version", "the page lost its version; reload it")
		}
		return h.Service.Tick(c.Request().Context(), actor(c), id, index, checked == "1", version, c.FormValue("command_id"))
	}, messageOnly)
}

// taskViews are the description's tasks, for the ticket page's buttons.
func taskViews(body string) []templates.TaskView {
	var out []templates.TaskView
	for _, t := range markdown.Tasks(body) {
		out = append(out, templates.TaskView{Index: t.Index, Text: t.Text, Checked: t.Checked, CommandID: events.NewID()})
	}
	return out
}
