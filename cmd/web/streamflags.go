package main

import (
	"flag"

	"braid/internal/stream"
)

// streamFlags tune GET /events/stream (internal/stream).
type streamFlags struct {
	buffer, perPerson, total *int
}

func addStreamFlags(fs *flag.FlagSet) streamFlags {
	return streamFlags{
		buffer:    fs.Int("stream-buffer", stream.DefaultBuffer, "live streams (GET /events/stream): how many committed batches a client may be behind before it is dropped as a slow consumer"),
		perPerson: fs.Int("streams-per-person", stream.DefaultPerPerson, "live streams one person may hold open at once"),
		total:     fs.Int("streams", stream.DefaultTotal, "live streams the server holds open at once, for everyone"),
	}
}

// check refuses values below 1.
func (sf streamFlags) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--stream-buffer", *sf.buffer}, {"--streams-per-person", *sf.perPerson}, {"--streams", *sf.total}} {
		if f.v < 1 {
			return fail(exitFailed, "%s %d: want a whole number from 1", f.name, f.v)
		}
	}
	return nil
}

func (sf streamFlags) apply(h *stream.Handler) {
	h.Buffer, h.PerPerson, h.Total = *sf.buffer, *sf.perPerson, *sf.total
}
