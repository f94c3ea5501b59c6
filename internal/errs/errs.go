// Package errs holds the one small error type every layer of Braid may use.
// A code says what kind of failure it is; the web layer maps codes to HTTP
// statuses in one place, and anything that is not an *Error is internal.
package errs

import (
	"errors"
	"fmt"
)

// Codes.
const (
	Invalid      = "invalid"
	NotFound     = "not_found"
	Conflict     = "conflict"
	Unauthorized = "unauthorized"
	Forbidden    = "forbidden"
	TooMany      = "too_many_requests"
	Internal     = "internal"

	// Unavailable: the server cannot do it right now (the disk is full,
	// the database is read-only); nothing was done.
	Unavailable = "unavailable"
)

// Error is a failure a user may be told about.
type Error struct {
	Code    string
	Message string
	// Fields holds a message per form field, for errors beside their field.
	Fields map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// E builds an *Error with a formatted message.
func E(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field builds an invalid-input error naming one field.
func Field(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: Invalid, Message: msg, Fields: map[string]string{field: msg}}
}

// Code returns the code of err, or Internal when err is not an *Error.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Message returns the user-facing message of err; internal errors never
// show their details.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "Something went wrong on our side. It has been logged."
}

// Fields returns the per-field messages of err, if any.
func Fields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
