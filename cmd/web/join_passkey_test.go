package main

import (
	"database/sql"
	"strings"
	"testing"
)

// commandsOf lists the commands that touched person's aggregate, in log
// order, each as its events' types joined by spaces.
func commandsOf(tb testing.TB, path, person string) []string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT e.command_id, e.event_type FROM events e
		WHERE e.command_id IN (SELECT command_id FROM events WHERE aggregate_type = 'user' AND aggregate_id = ?)
		ORDER BY e.position`, person)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var order []string
	types := map[string][]string{}
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			tb.Fatal(err)
		}
		if _, ok := types[id]; !ok {
			order = append(order, id)
		}
		types[id] = append(types[id], typ)
	}
	out := make([]string, len(order))
	for i, id := range order {
		out[i] = strings.Join(types[id], " ")
	}
	return out
}
