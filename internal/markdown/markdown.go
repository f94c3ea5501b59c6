// Package markdown renders what people type in ticket bodies and comments
// (CommonMark with GitHub's tables, task lists, strikethrough and
// autolinks) as HTML that is safe to put in a page.
//
// The stored text is always what the person typed; rendering is a view.
// Safety comes from three layers, each enough on its own against script:
//
//  1. goldmark runs without html.WithUnsafe: raw HTML in the text is
//     dropped ("<!-- raw HTML omitted -->") and links or images whose
//     destination is javascript:, vbscript:, file: or data: (other than
//     images) are emptied by goldmark itself.
//  2. The output goes through a bluemonday allow-list (Policy): only the
//     elements Markdown makes, no style or on* attributes, links only to
//     http, https, mailto or this site (rel="nofollow noopener"), images
//     only from https or this site, classes only on code highlighting.
//  3. The page's Content-Security-Policy has no inline script and no
//     inline style (script-src 'self'; style-src 'self').
//
// Code blocks are highlighted by chroma with CSS classes (static/chroma.css),
// never inline styles, so the CSP stays strict.
//
// References: "#123" links to ticket 123, "position:N" to the event at log
// position N, "@name" to the person's profile when Known says the name
// belongs to someone (otherwise it stays plain text).
package markdown

import (
	"bytes"
	"crypto/sha256"
	"html/template"
	"regexp"
	"strings"
	"sync"

	"github.com/alecthomas/chroma/v2"
	chtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Known says whether a typed @name is someone's username. Nil: no mention
// becomes a link.
type Known func(username string) bool

// Render turns text into safe HTML, with no @name links.
func Render(src string) template.HTML { return RenderKnown(src, nil) }

// RenderKnown turns text into safe HTML; @name links to /people/name when
// known(name) is true. Results are cached by the SHA-256 of the text and of
// which of its mentions are known.
func RenderKnown(src string, known Known) template.HTML {
	if src == "" {
		return ""
	}
	key := cacheKey(src, known)
	if h, ok := cache.get(key); ok {
		return h
	}
	h := render(src, known)
	cache.put(key, h)
	return h
}

var mentionScan = regexp.MustCompile(`@([A-Za-z0-9_-]{3,32})`)

// cacheKey binds the text and, for each @name in it, whether it is known:
// a person registering or renaming changes the key, not a stale entry.
func cacheKey(src string, known Known) [32]byte {
	s := sha256.New()
	s.Write([]byte(src))
	if known != nil && strings.IndexByte(src, '@') >= 0 {
		s.Write([]byte{0})
		for _, m := range mentionScan.FindAllStringSubmatch(src, 50) {
			if known(m[1]) {
				s.Write([]byte{'1'})
			} else {
				s.Write([]byte{'0'})
			}
		}
	}
	var k [32]byte
	copy(k[:], s.Sum(nil))
	return k
}

func render(src string, known Known) template.HTML {
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(refs{known}, 100))),
		goldmark.WithRendererOptions(
			html.WithHardWraps(), // a line break typed is a line break shown, as on GitHub comments
			renderer.WithNodeRenderers(util.Prioritized(codeRenderer{}, 100)),
		),
	)
	var buf bytes.Buffer
	if err := md.Convert([]byte(src), &buf); err != nil {
		// goldmark only fails on a failing writer; show the text escaped.
		return template.HTML("<p>" + template.HTMLEscapeString(src) + "</p>")
	}
	return template.HTML(policy.SanitizeBytes(buf.Bytes()))
}

// Policy is the allow-list every rendering passes through (bluemonday's
// UGC policy, tightened).
var policy = newPolicy()

func newPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowStandardURLs() // http, https, mailto and relative; parseable
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireNoFollowOnLinks(true)
	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("rel").Matching(regexp.MustCompile(`^noopener$`)).OnElements("a")
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^(ref|mention)$`)).OnElements("a")
	p.AllowElements("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
		"strong", "em", "del", "code", "pre", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "span")
	p.AllowAttrs("start").Matching(bluemonday.Integer).OnElements("ol")
	p.AllowAttrs("align").Matching(regexp.MustCompile(`^(left|right|center)$`)).OnElements("th", "td")
	// Task lists: a disabled checkbox, nothing else.
	p.AllowAttrs("type").Matching(regexp.MustCompile(`^checkbox$`)).OnElements("input")
	p.AllowAttrs("checked", "disabled").Matching(regexp.MustCompile(`^$`)).OnElements("input")
	p.AllowAttrs("aria-label").Matching(regexp.MustCompile(`^(done|not done)$`)).OnElements("input")
	// Highlighting classes (chroma's short names) on code only.
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^[a-z0-9 -]{1,40}$`)).OnElements("pre", "code", "span")
	// Images: https or this site (a path), never http, data: or another scheme.
	p.AllowAttrs("src").Matching(regexp.MustCompile(`^(https://[^\s]+|/[^/\\\s][^\s]*)$`)).OnElements("img")
	p.AllowAttrs("alt", "title").OnElements("img")
	p.AllowAttrs("title").OnElements("a")
	p.AllowAttrs("dir").Matching(regexp.MustCompile(`^auto$`)).OnElements("p", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote")
	return p
}

// refs turns #123, position:N and @name in plain text into links.
type refs struct{ known Known }

var refRE = regexp.MustCompile(`#([0-9]{1,12})\b|\bposition:([0-9]{1,15})\b|@([A-Za-z0-9_-]{3,32})`)

func (r refs) Transform(doc *ast.Document, reader text.Reader, pc parser.Context) {
	src := reader.Source()
	var texts []*ast.Text
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n.Kind() {
		case ast.KindLink, ast.KindAutoLink, ast.KindCodeSpan, ast.KindImage, ast.KindCodeBlock, ast.KindFencedCodeBlock, ast.KindHTMLBlock, ast.KindRawHTML:
			return ast.WalkSkipChildren, nil
		case ast.KindText:
			texts = append(texts, n.(*ast.Text))
		}
		return ast.WalkContinue, nil
	})
	for _, t := range texts {
		r.split(t, src)
	}
}

// split replaces one text node by text and link nodes.
func (r refs) split(t *ast.Text, src []byte) {
	seg := t.Segment
	val := src[seg.Start:seg.Stop]
	ms := refRE.FindAllSubmatchIndex(val, -1)
	if ms == nil {
		return
	}
	parent := t.Parent()
	at := 0
	var last ast.Node = nil
	insert := func(n ast.Node) {
		if last == nil {
			parent.InsertBefore(parent, t, n)
		} else {
			parent.InsertAfter(parent, last, n)
		}
		last = n
	}
	for _, m := range ms {
		start, end := m[0], m[1]
		// A reference starts a word: not "a#1", "x@bob" (an address) or "a_position:2".
		if start > 0 && isWord(val[start-1]) {
			continue
		}
		if end < len(val) && (val[end] == '@' || (val[end] == '.' && end+1 < len(val) && isWord(val[end+1]))) {
			continue // bob@example.com, @bob.example
		}
		var href, class string
		switch {
		case m[2] >= 0:
			href, class = "/tickets/"+string(val[m[2]:m[3]]), "ref"
		case m[4] >= 0:
			href, class = "/events/"+string(val[m[4]:m[5]]), "ref"
		default:
			name := string(val[m[6]:m[7]])
			if r.known == nil || !r.known(name) {
				continue
			}
			href, class = "/people/"+strings.ToLower(name), "mention"
		}
		if start > at {
			insert(ast.NewTextSegment(text.NewSegment(seg.Start+at, seg.Start+start)))
		}
		l := ast.NewLink()
		l.Destination = []byte(href)
		l.SetAttributeString("class", []byte(class))
		l.AppendChild(l, ast.NewTextSegment(text.NewSegment(seg.Start+start, seg.Start+end)))
		insert(l)
		at = end
	}
	if last == nil {
		return
	}
	rest := ast.NewTextSegment(text.NewSegment(seg.Start+at, seg.Stop))
	rest.SetSoftLineBreak(t.SoftLineBreak())
	rest.SetHardLineBreak(t.HardLineBreak())
	parent.InsertAfter(parent, last, rest)
	parent.RemoveChild(parent, t)
}

func isWord(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// codeRenderer highlights fenced code with a language by chroma's classes;
// other code blocks are plain <pre><code>.
type codeRenderer struct{}

func (codeRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindFencedCodeBlock, renderCode)
	reg.Register(ast.KindCodeBlock, renderCode)
	reg.Register(ast.KindLink, renderLink)
	reg.Register(ast.KindAutoLink, renderAutoLink)
	reg.Register(east.KindTaskCheckBox, renderTaskBox)
}

// renderTaskBox draws a task list's box, disabled, with a name a screen
// reader can say (GFM's own has none).
func renderTaskBox(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	if n.(*east.TaskCheckBox).IsChecked {
		_, _ = w.WriteString(`<input checked="" disabled="" type="checkbox" aria-label="done"> `)
	} else {
		_, _ = w.WriteString(`<input disabled="" type="checkbox" aria-label="not done"> `)
	}
	return ast.WalkContinue, nil
}

var style = styles.Get("github")

var formatter = chtml.New(chtml.WithClasses(true), chtml.WithPreWrapper(preWrapper{}))

type preWrapper struct{}

func (preWrapper) Start(code bool, styleAttr string) string { return `<pre class="chroma"><code>` }
func (preWrapper) End(code bool) string                     { return `</code></pre>` }

func renderCode(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkSkipChildren, nil
	}
	var code bytes.Buffer
	lines := n.Lines()
	for i := 0; i < lines.Len(); i++ {
		s := lines.At(i)
		code.Write(s.Value(src))
	}
	var lexer chroma.Lexer
	if f, ok := n.(*ast.FencedCodeBlock); ok && f.Info != nil {
		lang := string(f.Language(src))
		if lang != "" {
			lexer = lexers.Get(lang)
		}
	}
	if lexer != nil {
		if it, err := chroma.Coalesce(lexer).Tokenise(nil, code.String()); err == nil {
			if err := formatter.Format(w, style, it); err == nil {
				return ast.WalkSkipChildren, nil
			}
		}
	}
	_, _ = w.WriteString("<pre><code>")
	_, _ = w.WriteString(template.HTMLEscapeString(code.String()))
	_, _ = w.WriteString("</code></pre>\n")
	return ast.WalkSkipChildren, nil
}

// renderLink writes links with rel="noopener" (bluemonday adds nofollow)
// and only safe destinations (goldmark's html.IsDangerousURL, then the policy).
func renderLink(w util.BufWriter, src []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Link)
	if entering {
		_, _ = w.WriteString(`<a href="`)
		if !html.IsDangerousURL(n.Destination) {
			_, _ = w.Write(util.EscapeHTML(util.URLEscape(n.Destination, true)))
		}
		_, _ = w.WriteString(`" rel="noopener"`)
		if c, ok := n.AttributeString("class"); ok {
			_, _ = w.WriteString(` class="`)
			_, _ = w.Write(util.EscapeHTML(c.([]byte)))
			_ = w.WriteByte('"')
		}
		if n.Title != nil {
			_, _ = w.WriteString(` title="`)
			_, _ = w.Write(util.EscapeHTML(n.Title))
			_ = w.WriteByte('"')
		}
		_ = w.WriteByte('>')
	} else {
		_, _ = w.WriteString("</a>")
	}
	return ast.WalkContinue, nil
}

func renderAutoLink(w util.BufWriter, src []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.AutoLink)
	if !entering {
		return ast.WalkContinue, nil
	}
	url := n.URL(src)
	label := n.Label(src)
	if n.AutoLinkType == ast.AutoLinkEmail && !bytes.HasPrefix(bytes.ToLower(url), []byte("mailto:")) {
		url = append([]byte("mailto:"), url...)
	}
	_, _ = w.WriteString(`<a href="`)
	if !html.IsDangerousURL(url) {
		_, _ = w.Write(util.EscapeHTML(util.URLEscape(url, false)))
	}
	_, _ = w.WriteString(`" rel="noopener">`)
	_, _ = w.Write(util.EscapeHTML(label))
	_, _ = w.WriteString(`</a>`)
	return ast.WalkContinue, nil
}

// CSS is the stylesheet for highlighted code (static/chroma.css is made
// from it: go run ./internal/markdown/gencss > static/chroma.css).
func CSS() string {
	var b bytes.Buffer
	_ = formatter.WriteCSS(&b, style)
	return b.String()
}

// cache holds recent renderings (the 4096 most recent, dropped all at once
// when full: simple, and bounded).
var cache = &lru{m: map[[32]byte]template.HTML{}}

type lru struct {
	mu sync.Mutex
	m  map[[32]byte]template.HTML
}

const cacheMax = 4096

func (c *lru) get(k [32]byte) (template.HTML, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[k]
	return h, ok
}

func (c *lru) put(k [32]byte, h template.HTML) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= cacheMax {
		c.m = make(map[[32]byte]template.HTML, cacheMax)
	}
	c.m[k] = h
}
