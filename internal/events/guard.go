package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"unicode/utf8"

	"braid/internal/errs"
)

// MaxData is the largest payload the writer appends, in bytes.
const MaxData = 1 << 20

// Fingerprint names a command by its kind and input, so that a command_id
// sent again can be told apart from the same id sent with something else:
// the hex SHA-256 of kind and parts, each prefixed with its length (so no
// two different inputs share a fingerprint). Include every input that
// decides what the command does; never a secret.
func Fingerprint(kind string, parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range append([]string{kind}, parts...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ValidID reports whether id has the one format of command ids: 32
// lowercase hex digits, as NewID makes them.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

var (
	errBadCommandID = errs.Field("command_id", "The form's command id is damaged (it must be 32 lowercase hex digits). Reload the page and try again.")
	// errReused answers a command_id that appended something else, or for
	// someone else, before. It never says whose.
	errReused = errs.E(errs.Conflict, "This form was already used for something else. Reload the page and try again.")
)

// plain reports whether s is valid UTF-8 with no control characters (C0,
// DEL, C1): what the log's short text columns must be.
func plain(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}

// checkEvent is the writer's last line of defence: whatever a command
// decided, nothing that is not text reaches the log's columns. Fields are
// validated with messages beside them long before this (internal/input).
func checkEvent(aggType, aggID string, p *Pending) error {
	switch {
	case !plain(aggType) || !plain(aggID):
		return errs.E(errs.Invalid, "refused to append %s: the aggregate type or id is not plain text", p.Type)
	case !plain(p.Type):
		return errs.E(errs.Invalid, "refused to append: the event type is not plain text")
	case len(p.Data) > MaxData:
		return errs.E(errs.Invalid, "refused to append %s: its data is %d bytes, over the limit of %d", p.Type, len(p.Data), MaxData)
	case !utf8.Valid(p.Data):
		return errs.E(errs.Invalid, "refused to append %s: its data is not valid UTF-8", p.Type)
	}
	return nil
}

// checkCommand checks what a command brings before it is queued.
func checkCommand(cmd *Command) error {
	if !ValidID(cmd.ID) {
		return errBadCommandID
	}
	if !plain(cmd.Actor) {
		return errs.E(errs.Invalid, "refused to append: the actor is not plain text")
	}
	return nil
}

// SQLite's primary result codes for a write the disk or file refused.
const (
	sqliteReadOnly = 8
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// unavailable is a write that failed because of the storage, not the
// command: it says so to the user (errs.Unavailable, 503) and keeps the
// cause for the log.
type unavailable struct {
	reason string // a few words for /healthz: "disk full"
	user   *errs.Error
	cause  error
}

func (e *unavailable) Error() string   { return "cannot write, " + e.reason + ": " + e.cause.Error() }
func (e *unavailable) Unwrap() []error { return []error{e.user, e.cause} }

// storage turns a SQLite failure to write (disk full, read-only database,
// I/O error, file gone) into an unavailable error; any other error is
// returned as it is.
func storage(err error) error {
	if err == nil {
		return nil
	}
	var u *unavailable
	if errors.As(err, &u) {
		return err
	}
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return err
	}
	var reason, msg string
	switch se.Code() & 0xff {
	case sqliteFull:
		reason, msg = "disk full", "the disk is full"
	case sqliteReadOnly:
		reason, msg = "database read-only", "the database is read-only"
	case sqliteIOErr:
		reason, msg = "disk I/O error", "the disk reported an input/output error"
	case sqliteCantOpen:
		reason, msg = "database file cannot be opened", "the database file cannot be opened"
	default:
		return err
	}
	return &unavailable{reason: reason, cause: err,
		user: errs.E(errs.Unavailable, "The server cannot write: %s. Nothing was saved.", msg)}
}

// reasonOf returns the few words /healthz shows for a storage failure.
func reasonOf(err error) error {
	var u *unavailable
	if errors.As(err, &u) {
		return errors.New(u.reason)
	}
	return nil
}
