package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/templates"
)

// Form reads the named fields of the request into a form to draw again,
// with a fresh command id for its next submission.
func Form(c echo.Context, names ...string) templates.Form {
	f := templates.Form{Values: map[string]string{}, Errors: map[string]string{}, CommandID: events.NewID()}
	for _, n := range names {
		f.Values[n] = c.FormValue(n)
	}
	return f
}

// WithError puts err's message above the form and its field messages
// beside their fields.
func WithError(f templates.Form, err error) templates.Form {
	f.Message = errs.Message(err)
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	for k, v := range errs.Fields(err) {
		f.Errors[k] = v
	}
	return f
}

// FormJSON answers a form page asked for as JSON: what a script needs to
// post it (the CSRF token, a fresh command id) and the values it would show.
func FormJSON(c echo.Context, action string, f templates.Form) error {
	values := f.Values
	if values == nil {
		values = map[string]string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"action": action, "csrf": CSRF(c), "command_id": f.CommandID, "values": values})
}
