// Command gencss writes the stylesheet for highlighted code: the light
// palette, then a dark one under prefers-color-scheme: dark.
//
//	go run ./internal/markdown/gencss > static/chroma.css
package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"braid/internal/markdown"

	chtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/styles"
)

var class = regexp.MustCompile(`\.chroma \.[a-z0-9]+ \{([^}]*)\}`)

func main() {
	fmt.Print(markdown.CSS())
	var b bytes.Buffer
	_ = chtml.New(chtml.WithClasses(true)).WriteCSS(&b, styles.Get("github-dark"))
	dark := b.String()
	fmt.Println("@media (prefers-color-scheme: dark) {")
	for _, line := range strings.Split(strings.TrimRight(dark, "\n"), "\n") {
		fmt.Println("  " + line)
	}
	// A class the light palette colours and the dark one does not would
	// keep its light colour on the dark background: give it the dark text
	// colour.
	for _, m := range class.FindAllStringSubmatch(markdown.CSS(), -1) {
		if strings.Contains(m[1], "color:") && !strings.Contains(dark, m[0][:strings.Index(m[0], "{")]) {
			fmt.Printf("  %s{ color: #e6edf3 }\n", m[0][:strings.Index(m[0], "{")])
		}
	}
	fmt.Println("}")
}
