package web

import (
	"fmt"
	"time"
)

// Replica is replication as the site shows it (internal/replica): on a
// primary started with --replicate, the replica's position and lag; on a
// follower started with --follow, the copy's.
type Replica struct {
	// Status returns the last log position held, the lag, and the last
	// failure (Replicator.Status, Follower.Status).
	Status func() (position int64, lag time.Duration, err error)
	// Following is set on a follower: every page says it is a read-only
	// copy and how far behind it may be; Primary is where to make changes.
	Following bool
	Primary   string
}

// ReplicaStatus is the replication part of /verify's JSON and /healthz.
type ReplicaStatus struct {
	Role       string  `json:"role"` // "primary" or "follower"
	Position   int64   `json:"position"`
	LagSeconds float64 `json:"lag_seconds"`
	Error      string  `json:"error,omitempty"`
}

// Now returns the status now.
func (r *Replica) Now() ReplicaStatus {
	p, lag, err := r.Status()
	s := ReplicaStatus{Role: "primary", Position: p, LagSeconds: lag.Round(time.Millisecond).Seconds()}
	if r.Following {
		s.Role = "follower"
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// Sentence says it in plain words, for a page.
func (s ReplicaStatus) Sentence() string {
	if s.Role == "follower" {
		t := fmt.Sprintf("This is a read-only copy. It was last caught up %s (up to change %d).", ago(time.Duration(s.LagSeconds*float64(time.Second))), s.Position)
		if s.Error != "" {
			t += " It cannot catch up at the moment."
		}
		return t
	}
	t := fmt.Sprintf("Replication: the replica holds the log up to position %d", s.Position)
	if s.LagSeconds > 0 {
		t += fmt.Sprintf("; the oldest change not yet there has waited %s", time.Duration(s.LagSeconds*float64(time.Second)).Round(100*time.Millisecond))
	} else {
		t += ", the head"
	}
	if s.Error != "" {
		t += "; the last attempt failed: " + s.Error
	}
	return t + "."
}
