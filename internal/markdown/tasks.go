package markdown

import (
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
)

// Task is one task-list item of a text: its box as the renderer draws it,
// in order. Offset is where its "[ ]" or "[x]" starts in the text.
type Task struct {
	Index   int
	Offset  int
	Checked bool
	Text    string // the item's first line, for a button's label
}

// Tasks finds the task-list boxes of src as the renderer sees them (from
// the parsed document, so a "[ ]" in code, a quote's prose or a link is
// not one).
func Tasks(src string) []Task {
	b := []byte(src)
	doc := goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser().Parse(text.NewReader(b))
	var out []Task
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		box, ok := n.(*east.TaskCheckBox)
		if !entering || !ok {
			return ast.WalkContinue, nil
		}
		para := box.Parent()
		if para == nil || para.Lines().Len() == 0 {
			return ast.WalkContinue, nil
		}
		line := para.Lines().At(0)
		at := line.Start
		// The box is the first thing of the item's first line.
		for at < line.Stop && (b[at] == ' ' || b[at] == '\t') {
			at++
		}
		if at+3 > len(b) || b[at] != '[' || b[at+2] != ']' || !strings.ContainsRune(" xX", rune(b[at+1])) {
			return ast.WalkContinue, nil
		}
		label := strings.TrimSpace(string(b[at+3 : line.Stop]))
		if r := []rune(label); len(r) > 80 {
			label = string(r[:80]) + "…"
		}
		out = append(out, Task{Index: len(out), Offset: at, Checked: box.IsChecked, Text: label})
		return ast.WalkContinue, nil
	})
	return out
}

// Tick returns src with task index ticked (or not): exactly its box
// changes. It reports false when there is no such task.
func Tick(src string, index int, checked bool) (string, bool) {
	ts := Tasks(src)
	if index < 0 || index >= len(ts) {
		return src, false
	}
	mark := " "
	if checked {
		mark = "x"
	}
	at := ts[index].Offset + 1
	return src[:at] + mark + src[at+1:], true
}
