package web

import (
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
