package auth

import (
	"net/http"
	"time"

	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"

	"braid/internal/events"
)

// sessionStore reads sessions through the reader pool and writes them
// through the auxiliary connection, so a page view never waits for a
// write lock: only sign-in, sign-out and flash messages write.
type sessionStore struct {
	read, write *sqlite3store.SQLite3Store
}

func (s sessionStore) Find(token string) ([]byte, bool, error) { return s.read.Find(token) }
func (s sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.write.Commit(token, b, expiry)
}
func (s sessionStore) Delete(token string) error { return s.write.Delete(token) }

// NewSessions returns the session manager: sessions in SQLite (scs with
// its sqlite3store), a cookie that is HttpOnly, SameSite=Lax and, behind
// TLS, Secure.
func NewSessions(db *events.DB, secure bool) *scs.SessionManager {
	s := scs.New()
	s.Store = sessionStore{
		read:  sqlite3store.NewWithCleanupInterval(db.Read, 0),
		write: sqlite3store.NewWithCleanupInterval(db.Aux, 30*time.Minute),
	}
	// No idle timeout: it would rewrite the session on every request.
	s.Lifetime = 14 * 24 * time.Hour
	s.Cookie.Name = "braid_session"
	s.Cookie.HttpOnly = true
	s.Cookie.SameSite = http.SameSiteLaxMode
	s.Cookie.Secure = secure
	return s
}
