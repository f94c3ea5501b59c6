package markdown

import "testing"

func TestPlainText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"## Steps\n1. Open **the export** page\n2. Press ~~Save~~", "Steps\nOpen the export page\nPress Save"},
		{"```go\nfmt.Println(\"export\")\n```\nafter", "fmt.Println(\"export\")\n\nafter"},
		{"| browser | result |\n|---|---|\n| Firefox | fails |", "browser result \nFirefox fails"},
		{"see [the docs](https://example.com/x) or https://example.org/y", "see the docs or https://example.org/y"},
		{"- [x] done\n- [ ] `todo` item", "done\ntodo item"},
		{"> quoted *word*", "quoted word"},
		{"a <b>bold</b> tag", "a <b>bold</b> tag"},
		{"![a screenshot](/files/abc/shot.png)", "a screenshot"},
		{"plain words", "plain words"},
	}
	for _, c := range cases {
		if got := PlainText(c.in); got != c.want {
			t.Errorf("PlainText(%q):\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func FuzzPlainText(f *testing.F) {
	for _, s := range []string{"## a", "```\nx", "| a |\n|-|", "[x](y)", "<a>", "* * *", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		PlainText(s) // never panics
	})
}
