package markdown

import (
	"regexp"
	"testing"
)

var (
	handlerAttr = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	badURL      = regexp.MustCompile(`(?i)\s(href|src|action|formaction|xlink:href)\s*=\s*["']?\s*(javascript|vbscript|data|file):`)
	badTag      = regexp.MustCompile(`(?i)<\s*(script|iframe|object|embed|style|form|input|svg|math|base|meta|link)\b`)
	// A task list's box: the one input the renderer draws, disabled.
	taskBox = regexp.MustCompile(`<input (checked="" )?disabled="" type="checkbox" aria-label="(not )?done">`)
)

// FuzzRender: nothing a person types renders a script, an event handler
// attribute, a script URL or a dangerous element.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"**x**", "<script>alert(1)</script>", "[a](javascript:alert(1))", "![x](data:image/svg+xml,<svg onload=alert(1)>)",
		"<img src=x onerror=alert(1)>", "```go\nfunc main() {}\n```", "- [ ] task\n- [x] done", "#12 @bob position:3",
		"[a](jav&#x09;ascript:alert(1))", "<a href=\"&#106;avascript:alert(1)\">x</a>", "| a | b |\n|---|---|\n| <b>c</b> | d |",
		"<svg><script>alert(1)</script></svg>", "[x]( JaVaScRiPt:alert(1) )", "<<script>script>alert(1)<</script>/script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 20000 {
			t.Skip()
		}
		out := taskBox.ReplaceAllString(string(Render(src)), "")
		for _, re := range []*regexp.Regexp{handlerAttr, badURL, badTag} {
			if m := re.FindString(out); m != "" {
				t.Errorf("input %q rendered %q (in %q)", src, m, out)
			}
		}
	})
}
