package markdown

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"braid/internal/markdown/markdowntest"
)

func TestContractStrong(t *testing.T) {
	if got := string(Render("**x**")); !strings.Contains(got, "<strong>x</strong>") {
		t.Fatalf("**x** rendered as %q", got)
	}
}

func TestReferences(t *testing.T) {
	known := func(n string) bool { return strings.EqualFold(n, "bob") }
	for _, c := range []struct{ in, want, not string }{
		{"see #12.", `<a href="/tickets/12" rel="noopener nofollow" class="ref">#12</a>.`, ""},
		{"at position:7", `<a href="/events/7" rel="noopener nofollow" class="ref">position:7</a>`, ""},
		{"hi @Bob", `<a href="/people/bob" rel="noopener nofollow" class="mention">@Bob</a>`, ""},
		{"hi @nobody", "hi @nobody", "mention"},
		{"mail bob@example.com", `href="mailto:bob@example.com"`, "/people/"},
		{"`#12` code", "<code>#12</code>", "/tickets/"},
		{"a#12", "a#12", "/tickets/"},
		{"[#3](https://example.com)", `href="https://example.com"`, "/tickets/3"},
	} {
		got := string(RenderKnown(c.in, known))
		if !strings.Contains(got, c.want) || (c.not != "" && strings.Contains(got, c.not)) {
			t.Errorf("%q rendered as %q; want %q, not %q", c.in, got, c.want, c.not)
		}
	}
}

func TestGFMAndCode(t *testing.T) {
	got := string(Render("|a|b|\n|-|-|\n|1|~~2~~|\n\n- [x] done\n\n```go\nfunc f() {}\n```\n\nhttps://example.com/x"))
	for _, want := range []string{"<table>", "<del>2</del>", `<input checked="" disabled="" type="checkbox" aria-label="done">`,
		`<pre class="chroma"><code>`, `<span class="kd">func</span>`, `<a href="https://example.com/x" rel="noopener nofollow">`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if strings.Contains(got, "style=") {
		t.Errorf("inline style in %q", got)
	}
}

func TestImages(t *testing.T) {
	for in, want := range map[string]string{
		"![a](https://example.com/a.png)": `<img src="https://example.com/a.png" alt="a">`,
		"![a](/static/a.png)":             `<img src="/static/a.png" alt="a">`,
		"![a](http://example.com/a.png)":  `<img alt="a">`,
		"![a](//example.com/a.png)":       `<img alt="a">`,
	} {
		if got := string(Render(in)); !strings.Contains(got, want) {
			t.Errorf("%q rendered as %q, want %q", in, got, want)
		}
	}
}

var allowedTags = map[string]bool{"p": true, "br": true, "hr": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "blockquote": true, "strong": true, "em": true, "del": true, "code": true, "pre": true, "ul": true,
	"ol": true, "li": true, "table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true, "span": true,
	"a": true, "img": true, "input": true}

// checkSafe parses rendered HTML as a browser would and fails on any
// element outside the allow-list, any on* or style attribute, and any URL
// attribute whose scheme is not http, https or mailto.
func checkSafe(t *testing.T, name, out string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if !allowedTags[tok.Data] {
			t.Errorf("%s: element <%s> in %q", name, tok.Data, out)
		}
		for _, a := range tok.Attr {
			k := strings.ToLower(a.Key)
			if strings.HasPrefix(k, "on") || k == "style" || k == "srcdoc" || k == "formaction" {
				t.Errorf("%s: attribute %s in %q", name, k, out)
			}
			if k == "href" || k == "src" || k == "action" || k == "background" || k == "data" {
				u, err := url.Parse(a.Val)
				if err != nil {
					t.Errorf("%s: unparseable %s %q", name, k, a.Val)
					continue
				}
				if s := strings.ToLower(u.Scheme); s != "" && s != "http" && s != "https" && s != "mailto" {
					t.Errorf("%s: %s=%q in %q", name, k, a.Val, out)
				}
				if k == "src" && u.Scheme == "http" {
					t.Errorf("%s: http image %q", name, a.Val)
				}
			}
		}
	}
}

// TestXSS renders every hostile case and checks the HTML that comes out.
func TestXSS(t *testing.T) {
	for _, c := range markdowntest.Cases {
		checkSafe(t, c.Name, string(RenderKnown(c.Text, func(string) bool { return true })))
	}
	if len(markdowntest.Cases) < 30 {
		t.Fatalf("only %d cases", len(markdowntest.Cases))
	}
}

func BenchmarkRenderUncached(b *testing.B) {
	src := "Steps:\n\n1. open **the** page\n2. see #12 and @bob\n\n```go\nfunc main() { println(1) }\n```\n"
	for i := 0; i < b.N; i++ {
		_ = render(src, nil)
	}
}
