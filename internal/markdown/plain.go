package markdown

import (
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
)

// plainParser reads Markdown as Render does (GitHub's extensions), for
// PlainText.
var plainParser = goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser()

// PlainText is the text a reader sees of src, without its Markdown: no
// heading marks, emphasis stars, fences, table bars or link targets (the
// link's words stay; a bare URL stays). Blocks are separated by a new line,
// table cells by a space. Raw HTML stays as typed, as text. For search
// snippets, which show a piece of a text: the caller escapes it.
func PlainText(src string) string {
	if src == "" {
		return ""
	}
	b := []byte(src)
	doc := plainParser.Parse(text.NewReader(b))
	var out strings.Builder
	lines := func(n ast.Node) {
		ls := n.Lines()
		for i := 0; i < ls.Len(); i++ {
			seg := ls.At(i)
			out.Write(seg.Value(b))
		}
	}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			switch n.(type) {
			case *ast.Paragraph, *ast.Heading, *ast.ListItem, *east.TableRow, *east.TableHeader, *ast.Blockquote:
				out.WriteByte('\n')
			case *east.TableCell:
				out.WriteByte(' ')
			}
			return ast.WalkContinue, nil
		}
		switch t := n.(type) {
		case *ast.Text:
			out.Write(t.Segment.Value(b))
			if t.SoftLineBreak() || t.HardLineBreak() {
				out.WriteByte(' ')
			}
		case *ast.String:
			out.Write(t.Value)
		case *ast.AutoLink:
			out.Write(t.URL(b))
			return ast.WalkSkipChildren, nil
		case *ast.FencedCodeBlock, *ast.CodeBlock, *ast.HTMLBlock:
			lines(n)
			out.WriteByte('\n')
			return ast.WalkSkipChildren, nil
		case *ast.RawHTML:
			for i := 0; i < t.Segments.Len(); i++ {
				seg := t.Segments.At(i)
				out.Write(seg.Value(b))
			}
		}
		return ast.WalkContinue, nil
	})
	return strings.TrimSpace(out.String())
}
