// Package api holds the OpenAPI 3.1 document of Braid's JSON surface,
// written by hand and kept true by the test suite: cmd/web's tests
// validate every JSON answer they get against it (openapi_test.go).
package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Document is openapi.json as embedded at build time.
//
//go:embed openapi.json
var Document []byte

// Serve answers GET /api/openapi.json.
func Serve(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, Document)
}
