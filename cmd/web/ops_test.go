package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"braid/internal/ops"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

const testMetricsToken = "s3cret-metrics-token-0123"

// scrape fetches url with the token as Bearer (none when empty) and
// parses the Prometheus text format.
func scrape(tb testing.TB, u, token string) map[string]*dto.MetricFamily {
	tb.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: got %d, want 200", u, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		tb.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// value returns the counter, gauge or histogram count of the series of
// name whose labels include want (0 when there is none).
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsCountCommandsAndRequests(t *testing.T) {
	s := startServer(t, "--metrics-token", testMetricsToken)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	before := scrape(t, s.URL+"/metrics", testMetricsToken)

	ticket := alice.open("the first")
	alice.open("the second")
	if a := alice.post(ticket+"/comments", alice.form(ticket, ticket+"/comments", url.Values{"body": {"seen it"}})); a.status != http.StatusSeeOther {
		t.Fatalf("comment: got %d, want 303", a.status)
	}
	if a := alice.post("/tickets", alice.form("/tickets/new", "", url.Values{"title": {""}})); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("open without a title: got %d, want 422", a.status)
	}
	after := scrape(t, s.URL+"/metrics", testMetricsToken)

	delta := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"braid_commands_total", map[string]string{"kind": "ticket_opened", "outcome": "ok"}, 2},
		{"braid_commands_total", map[string]string{"kind": "comment_added", "outcome": "ok"}, 1},
		{"braid_commands_total", map[string]string{"outcome": "invalid"}, 1},
		{"braid_http_requests_total", map[string]string{"route": "/tickets", "method": "POST", "status": "303"}, 2},
		{"braid_http_requests_total", map[string]string{"route": "/tickets", "method": "POST", "status": "422"}, 1},
		{"braid_http_requests_total", map[string]string{"route": "/tickets/:id/comments", "method": "POST", "status": "303"}, 1},
		{"braid_http_requests_total", map[string]string{"route": "/tickets/:id", "method": "GET", "status": "200"}, 1},
		{"braid_http_request_seconds", map[string]string{"route": "/tickets", "method": "POST"}, 3},
	} {
		if got := delta(c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Each command commits in a batch of its own here (one browser, one
	// request at a time); the signer's own batches may add to them.
	if got := delta("braid_writer_commit_seconds", nil); got < 4 {
		t.Errorf("braid_writer_commit_seconds moved by %v, want at least 4", got)
	}
	if got := delta("braid_writer_batch_commands", nil); got < 4 {
		t.Errorf("braid_writer_batch_commands moved by %v, want at least 4", got)
	}
	if got, want := value(after, "braid_head_position", nil), float64(countEvents(t, s.DB)); got != want {
		t.Errorf("braid_head_position: got %v, want %v", got, want)
	}
	if got := value(after, "braid_sessions_active", nil); got < 1 {
		t.Errorf("braid_sessions_active: got %v, want at least 1", got)
	}
	if got := value(after, "braid_replication_lag_seconds", nil); got != -1 {
		t.Errorf("braid_replication_lag_seconds without replication: got %v, want -1", got)
	}
	// Route patterns only: never a raw URL with an id in it.
	for _, m := range after["braid_http_requests_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "route" && regexp.MustCompile(`/\d`).MatchString(l.GetValue()) {
				t.Errorf("route label %q holds a raw URL", l.GetValue())
			}
		}
	}
}

func TestMetricsNeedTheToken(t *testing.T) {
	s := startServer(t, "--metrics-token", testMetricsToken)
	plain := startServer(t)
	for _, c := range []struct {
		name, url, auth string
		want            int
	}{
		{"no token", s.URL + "/metrics", "", http.StatusUnauthorized},
		{"wrong token", s.URL + "/metrics", "Bearer " + testMetricsToken + "x", http.StatusUnauthorized},
		{"not bearer", s.URL + "/metrics", "Basic " + testMetricsToken, http.StatusUnauthorized},
		{"right token", s.URL + "/metrics", "Bearer " + testMetricsToken, http.StatusOK},
		{"not configured", plain.URL + "/metrics", "Bearer " + testMetricsToken, http.StatusNotFound},
	} {
		req, _ := http.NewRequest("GET", c.url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s: got %d, want %d", c.name, res.StatusCode, c.want)
		}
	}
	if code, _, errb := runWeb(t, "serve", "--db", filepath.Join(t.TempDir(), "b.db"), "--metrics-token", "short"); code != exitFailed || !strings.Contains(errb, "at least 16") {
		t.Errorf("short token: exit %d, %q; want 2 and a message", code, errb)
	}
}

var metricsURL = regexp.MustCompile(`"serving metrics".*"url":"(http://[^"]+)"`)

func TestMetricsOnTheirOwnAddress(t *testing.T) {
	s := startServer(t, "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	var mu string
	for i := 0; i < 100 && mu == ""; i++ {
		if m := metricsURL.FindStringSubmatch(s.Log.String()); m != nil {
			mu = m[1]
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if mu == "" {
		t.Fatalf("no metrics address in the log:\n%s", s.Log.String())
	}
	fams := scrape(t, mu, "")
	if _, ok := fams["braid_head_position"]; !ok {
		t.Errorf("no braid_head_position on %s", mu)
	}
	// Nothing else on the metrics listener; no metrics on the main one.
	for _, u := range []string{strings.TrimSuffix(mu, "/metrics") + "/tickets", s.URL + "/metrics"} {
		res, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", u, res.StatusCode)
		}
	}
}

func TestJSONLogs(t *testing.T) {
	s := startServer(t, "--log-format", "json")
	newBrowser(t, s.URL).register("alice")
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(s.Log.String()))
	lines := 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if rec["level"] == nil || rec["msg"] == nil || rec["time"] == nil {
			t.Errorf("log line %q lacks time, level or msg", sc.Text())
		}
		lines++
	}
	if lines < 3 {
		t.Fatalf("got %d log lines, want at least 3:\n%s", lines, s.Log.String())
	}
	code, _, errb := runWeb(t, "replay", "--db", s.DB, "--log-format", "yaml")
	if code != exitFailed || !strings.Contains(errb, "use text or json") {
		t.Errorf("--log-format yaml: exit %d, %q; want 2 and a message", code, errb)
	}
}

func TestExportEveryWritesVerifiedAndPrunes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exports")
	s := startServer(t, "--export-every", "200ms", "--export-dir", dir, "--export-keep", "2", "--metrics-token", testMetricsToken)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	alice.open("before the exports")
	// At most one export is under way now and may have started before the
	// ticket was opened: three more, and the newest two hold the ticket.
	ok := map[string]string{"outcome": "ok"}
	want := value(scrape(t, s.URL+"/metrics", testMetricsToken), "braid_exports_total", ok) + 3
	deadline := time.Now().Add(10 * time.Second)
	for value(scrape(t, s.URL+"/metrics", testMetricsToken), "braid_exports_total", ok) < want {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 scheduled exports in 10s; log:\n%s", s.Log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	names, err := ops.Exports(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 {
		t.Fatalf("got %d exports %v, want the newest 2", len(names), names)
	}
	events := countEvents(t, s.DB)
	for _, n := range names {
		if !strings.HasSuffix(n, "-"+itoa(events)+".jsonl") {
			t.Errorf("export %s: want its name to end in the head position %d", n, events)
		}
		code, out, _ := runWeb(t, "verify", "--file", filepath.Join(dir, n))
		if code != 0 || !strings.HasPrefix(out, "intact: "+itoa(events)+" events") {
			t.Errorf("verify --file %s: exit %d, %q", n, code, firstLine(out))
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("the export directory holds %d files, want 2 (no temporary files left)", len(ents))
	}
	if code, _, errb := runWeb(t, "serve", "--db", s.DB, "--export-every", "1h"); code != exitFailed || !strings.Contains(errb, "--export-dir") {
		t.Errorf("--export-every without --export-dir: exit %d, %q", code, errb)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// doctorLines maps each check's name to its line of `web doctor`.
func doctorLines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			name := f[1]
			if name == "log" {
				name = "log key"
			}
			m[name] = l
		}
	}
	return m
}

func TestDoctor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exports")
	s := startServer(t, "--export-every", "200ms", "--export-dir", dir)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	alice.open("for the doctor")
	if a := alice.get("/verify"); a.status != http.StatusOK {
		t.Fatalf("GET /verify: got %d", a.status)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if names, _ := ops.Exports(dir); len(names) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled export in 10s")
		}
	}
	s.stop()

	code, out, errb := runWeb(t, "doctor", "--db", s.DB)
	lines := doctorLines(out)
	if code != 0 {
		t.Fatalf("doctor on a good deployment: exit %d, stderr %q\n%s", code, errb, out)
	}
	for _, name := range []string{"disk", "wal", "integrity", "log key", "verify", "export"} {
		if !strings.HasPrefix(lines[name], "ok ") {
			t.Errorf("doctor %s: got %q, want ok", name, lines[name])
		}
	}
	if !strings.HasPrefix(lines["anchors"], "skip") || !strings.HasPrefix(lines["replication"], "skip") {
		t.Errorf("doctor anchors, replication: got %q, %q; want skip", lines["anchors"], lines["replication"])
	}
	if code, out, _ := runWeb(t, "doctor", "--db", s.DB, "--anchor-every", "1h"); code != 1 || !strings.HasPrefix(doctorLines(out)["anchors"], "fail") {
		t.Errorf("doctor expecting anchors on a log never anchored: exit %d\n%s", code, out)
	}

	// The signing key gone.
	if err := os.Rename(s.DB+".key", s.DB+".key.away"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runWeb(t, "doctor", "--db", s.DB)
	if code != 1 || !strings.HasPrefix(doctorLines(out)["log key"], "fail") {
		t.Errorf("doctor without the key: exit %d, want 1 and the key failing\n%s", code, out)
	}
	os.Rename(s.DB+".key.away", s.DB+".key")

	// A damaged page: quick_check fails.
	broken := filepath.Join(t.TempDir(), "braid.db")
	data, err := os.ReadFile(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.DB + "-wal"); err == nil {
		t.Fatalf("the database still has a WAL after serve stopped")
	}
	for i := 4096; i < 2*4096 && i < len(data); i++ {
		data[i] = 0xA5
	}
	if err := os.WriteFile(broken, data, 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(s.DB + ".key")
	os.WriteFile(broken+".key", key, 0o600)
	code, out, errb = runWeb(t, "doctor", "--db", broken)
	if code != 1 || !strings.HasPrefix(doctorLines(out)["integrity"], "fail") {
		t.Errorf("doctor on a damaged file: exit %d, want 1 and integrity failing; stderr %q\n%s", code, errb, out)
	}

	if code, _, errb := runWeb(t, "doctor", "--db", filepath.Join(t.TempDir(), "none.db")); code != 2 || !strings.Contains(errb, "no database") {
		t.Errorf("doctor without a database: exit %d, %q; want 2", code, errb)
	}
}

func TestExportEveryCountsFailures(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--export-every", "200ms", "--export-dir", notDir, "--metrics-token", testMetricsToken)
	failed := map[string]string{"outcome": "failed"}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams := scrape(t, s.URL+"/metrics", testMetricsToken)
		if value(fams, "braid_exports_total", failed) >= 2 {
			if got := value(fams, "braid_exports_total", map[string]string{"outcome": "ok"}); got != 0 {
				t.Errorf("exports into a file counted %v successes", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed export counted in 10s; log:\n%s", s.Log.String())
		}
	}
	if !strings.Contains(s.Log.String(), "scheduled export failed") {
		t.Errorf("the failure is not logged:\n%s", s.Log.String())
	}
	s.stop()
	code, out, _ := runWeb(t, "doctor", "--db", s.DB)
	if code != 1 || !strings.HasPrefix(doctorLines(out)["export"], "fail") {
		t.Errorf("doctor after failed exports only: exit %d, want 1 and export failing\n%s", code, out)
	}
}
