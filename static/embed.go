// Package static embeds the CSS and JavaScript served under /static/.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
)

//go:embed *.css *.js
var files embed.FS

// Assets serves the embedded files under cache-busting names.
type Assets struct {
	FS      fs.FS
	version map[string]string
}

// New hashes every embedded file once.
func New() *Assets {
	a := &Assets{FS: files, version: map[string]string{}}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		a.version[e.Name()] = hex.EncodeToString(sum[:5])
	}
	return a
}

// URL returns the path of a static file with its content hash, so browsers
// may cache it for a year and still see a new release at once.
func (a *Assets) URL(name string) string {
	return "/static/" + name + "?v=" + a.version[name]
}

// Version returns the content hash of a static file ("" for none), the ?v=
// that URL draws for it.
func (a *Assets) Version(name string) string { return a.version[name] }
