// Package migrations embeds the SQL migrations, applied in order by goose.
package migrations

import "embed"

// FS holds the numbered migration files.
//
//go:embed *.sql
var FS embed.FS
