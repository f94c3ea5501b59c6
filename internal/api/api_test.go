package api

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestDocumentIsValidOpenAPI31 loads the embedded document with
// kin-openapi and validates it as OpenAPI 3.1 (JSON Schema 2020-12), with
// every $ref resolved and every example checked.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(Document)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.1: %v", err)
	}
	// Every operation has a summary, a unique id and the error answer.
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.Summary == "" {
				t.Errorf("%s: no summary", where)
			}
			if prev, dup := seen[op.OperationID]; dup || op.OperationID == "" {
				t.Errorf("%s: operationId %q empty or also used by %s", where, op.OperationID, prev)
			}
			seen[op.OperationID] = where
			if op.Responses.Default() == nil {
				t.Errorf("%s: no default (error) response", where)
			}
		}
	}
}
