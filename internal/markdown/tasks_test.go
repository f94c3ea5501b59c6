package markdown

import "testing"

// TestTasks: the boxes are the ones the renderer draws: a "[ ]" in code,
// in a quote's prose or in the middle of a line is not a task; ticking
// changes exactly one character.
func TestTasks(t *testing.T) {
	src := "Plan:\n\n- [ ] write tests\n- [x] fix the bug\n  - [ ] nested one\n\n```\n- [ ] in code\n```\n\n> text [ ] in a quote\n\n* [X] star item\n\nnot - [ ] a task\n"
	ts := Tasks(src)
	want := []struct {
		text    string
		checked bool
	}{{"write tests", false}, {"fix the bug", true}, {"nested one", false}, {"star item", true}}
	if len(ts) != len(want) {
		t.Fatalf("got %d tasks %+v, want %d", len(ts), ts, len(want))
	}
	for i, w := range want {
		if ts[i].Text != w.text || ts[i].Checked != w.checked || ts[i].Index != i {
			t.Errorf("task %d: %+v, want %q checked=%v", i, ts[i], w.text, w.checked)
		}
	}
	got, ok := Tick(src, 2, true)
	if !ok || len(got) != len(src) {
		t.Fatalf("tick: %v %q", ok, got)
	}
	diff := 0
	for i := range src {
		if src[i] != got[i] {
			diff++
		}
	}
	if diff != 1 || !Tasks(got)[2].Checked {
		t.Errorf("tick changed %d characters: %q", diff, got)
	}
	if back, _ := Tick(got, 2, false); back != src {
		t.Errorf("untick: %q", back)
	}
	if _, ok := Tick(src, 4, true); ok {
		t.Errorf("ticked a task that is not there")
	}
	if _, ok := Tick(src, -1, true); ok {
		t.Errorf("ticked task -1")
	}
}

// FuzzTick: ticking any index of any text changes at most one byte, and
// only a box.
func FuzzTick(f *testing.F) {
	f.Add("- [ ] a\n- [x] b", 1, false)
	f.Add("```\n- [ ] x\n```\n- [ ] y", 0, true)
	f.Fuzz(func(t *testing.T, src string, index int, checked bool) {
		if len(src) > 10000 {
			t.Skip()
		}
		got, ok := Tick(src, index, checked)
		if !ok {
			if got != src {
				t.Fatalf("refused but changed")
			}
			return
		}
		if len(got) != len(src) {
			t.Fatalf("length changed")
		}
		for i := range src {
			if src[i] != got[i] && (src[i] != ' ' && src[i] != 'x' && src[i] != 'X' || i == 0 || src[i-1] != '[') {
				t.Fatalf("changed byte %d (%q) of %q", i, src[i], src)
			}
		}
	})
}
