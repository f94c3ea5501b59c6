// Command gencss writes the stylesheet for highlighted code: the light
// palette, then a dark one under prefers-color-scheme: dark.
//
//	go run ./internal/markdown/gencss > static/chroma.css
package main

import (
	"bytes"
	"fmt"
	"strings"

	"braid/internal/markdown"

	chtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/styles"
)

func main() {
	fmt.Print(markdown.CSS())
	var b bytes.Buffer
	_ = chtml.New(chtml.WithClasses(true)).WriteCSS(&b, styles.Get("github-dark"))
	fmt.Println("@media (prefers-color-scheme: dark) {")
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Println("  " + line)
	}
	fmt.Println("}")
}
