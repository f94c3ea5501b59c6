package tlog_test

import (
	"testing"

	"braid/internal/tlog"
)

// TestTilePath: the C2SP tlog-tiles paths, with the spec's example index
// 1234067 (x001/x234/067), read back and refused in any other spelling.
func TestTilePath(t *testing.T) {
	for path, want := range map[string]tlog.Tile{
		"tile/0/000":                               {L: 0, N: 0, W: 256},
		"tile/0/001":                               {L: 0, N: 1, W: 256},
		"tile/0/999":                               {L: 0, N: 999, W: 256},
		"tile/0/x001/000":                          {L: 0, N: 1000, W: 256},
		"tile/2/x001/x234/067":                     {L: 2, N: 1234067, W: 256},
		"tile/1/x001/x234/067.p/8":                 {L: 1, N: 1234067, W: 8},
		"tile/entries/x001/x234/067":               {Entries: true, N: 1234067, W: 256},
		"tile/entries/000.p/255":                   {Entries: true, N: 0, W: 255},
		"tile/63/000.p/1":                          {L: 63, N: 0, W: 1},
		"tile/0/x009/x223/x372/x036/x854/x775/807": {N: 9223372036854775807, W: 256},
	} {
		got, err := tlog.ParseTilePath(path)
		if err != nil || got != want {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", path, got, err, want)
		}
		if p := want.Path(); p != path {
			t.Errorf("%+v.Path() = %q, want %q", want, p, path)
		}
	}
	for _, bad := range []string{
		"", "tile/", "tile/0", "tile/0/", "tile/0/1", "tile/0/0000", "tile/0/x000/001", "tile/0/001/002",
		"tile/0/x1234/067", "tile/00/000", "tile/64/000", "tile/-1/000", "tile/0/000.p/0", "tile/0/000.p/256",
		"tile/0/000.p/01", "tile/0/000.p/", "tile/0/000.p/8/", "tile/0/00a", "tile/entry/000", "tile/entries/",
		"tile/0/x010/x000/x000/x000/x000/x000/x000/000", "tile/0/x009/x223/x372/x036/x854/x775/808",
		"tiles/0/000", "/tile/0/000", "tile/0/+01",
	} {
		if got, err := tlog.ParseTilePath(bad); err == nil {
			t.Errorf("ParseTilePath(%q) = %+v, want an error", bad, got)
		}
	}
}

// FuzzTilePath: a path is accepted only in the one spelling Path writes.
func FuzzTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/2/x001/x234/067.p/8", "tile/entries/x000/001", "tile/0/000.p/0", "tile/63/x9/999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tile, err := tlog.ParseTilePath(path)
		if err != nil {
			return
		}
		if got := tile.Path(); got != path {
			t.Fatalf("ParseTilePath(%q) = %+v, whose Path is %q", path, tile, got)
		}
		if tile.N < 0 || tile.W < 1 || tile.W > tlog.TileWidth || tile.L < 0 || tile.L > 63 {
			t.Fatalf("ParseTilePath(%q) = %+v", path, tile)
		}
	})
}
