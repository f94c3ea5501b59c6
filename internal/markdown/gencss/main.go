// Command gencss writes the stylesheet for highlighted code:
//
//	go run ./internal/markdown/gencss > static/chroma.css
package main

import (
	"fmt"

	"braid/internal/markdown"
)

func main() { fmt.Print(markdown.CSS()) }
