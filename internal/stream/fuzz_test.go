package stream

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzParse: any query and Last-Event-ID either is refused or gives a
// position from 0 and a filter of well-formed names.
func FuzzParse(f *testing.F) {
	f.Add("after=3&type=comment_added", "")
	f.Add("ticket=7&aggregate_type=project", "")
	f.Add("after=-1", "12")
	f.Add("type=a&type=b&type=c&type=d&type=e&type=f&type=g&type=h&type=i&type=j&type=k&type=l&type=m&type=n&type=o&type=p&type=q", "x")
	e := echo.New()
	f.Fuzz(func(t *testing.T, query, lastID string) {
		if _, err := url.ParseQuery(query); err != nil {
			t.Skip()
		}
		req := httptest.NewRequest("GET", "/events/stream", nil)
		req.URL.RawQuery = query
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		r, err := parse(e.NewContext(req, httptest.NewRecorder()))
		if err != nil {
			return
		}
		if r.after < 0 {
			t.Errorf("after %d from %q / %q", r.after, query, lastID)
		}
		for _, ty := range r.filter.Types {
			if !name.MatchString(ty) {
				t.Errorf("type %q accepted", ty)
			}
		}
		if len(r.filter.Types) > maxTypes {
			t.Errorf("%d types accepted", len(r.filter.Types))
		}
	})
}
