package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Limiter bounds attempts per key. Each key may spend Max attempts of a
// Rule at once, then earns one back every Window/Max (the generic cell
// rate algorithm): a key that stops trying has all its attempts again
// after Window. Its state is one number per key, keys are fixed-size
// hashes, keys with nothing to remember are pruned, and at most Cap keys
// are kept (the ones closest to expiry are dropped first), so no input
// can make it grow without bound.
type Limiter struct {
	Now func() time.Time
	Cap int

	mu    sync.Mutex
	full  map[Key]int64 // unix ns when the key has all its attempts again
	swept int64
}

// DefaultLimiterCap is how many keys NewLimiter remembers at most (a few
// megabytes).
const DefaultLimiterCap = 100_000

// NewLimiter returns a limiter keeping at most capacity keys.
func NewLimiter(capacity int) *Limiter {
	return &Limiter{Now: time.Now, Cap: capacity, full: map[Key]int64{}}
}

// Key names what is counted: a hash of its parts.
type Key [16]byte

// maxKeyPart is how much of each part is hashed: more than the longest
// valid username, so two valid names never share a key, while a 900 KB
// username costs no more than a short one.
const maxKeyPart = 64

// KeyOf hashes parts (each cut to maxKeyPart bytes) into a key.
func KeyOf(parts ...string) Key {
	h := sha256.New()
	var n [4]byte
	for _, p := range parts {
		if len(p) > maxKeyPart {
			p = p[:maxKeyPart]
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k Key
	copy(k[:], h.Sum(nil))
	return k
}

// Rule allows Max attempts per Window.
type Rule struct {
	Max    int
	Window time.Duration
}

func (r Rule) interval() int64 { return int64(r.Window) / int64(r.Max) }

// Limit is one rule applied to one key.
type Limit struct {
	Key  Key
	Rule Rule
}

// Reservation is an attempt taken by Reserve.
type Reservation struct {
	l      *Limiter
	limits []Limit
}

// Reserve takes one attempt from every limit in one step, or none when any
// of them is used up; then it reports how long until all of them allow one
// again. Callers reserve before the costly check (bcrypt), so parallel
// requests cannot all pass a check made before any of them counted.
func (l *Limiter) Reserve(limits ...Limit) (Reservation, time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now().UnixNano()
	l.sweep(now, false)
	var wait int64
	for _, lim := range limits {
		if w := max(l.full[lim.Key], now) + lim.Rule.interval() - now - int64(lim.Rule.Window); w > wait {
			wait = w
		}
	}
	if wait > 0 {
		return Reservation{}, time.Duration(wait), false
	}
	for _, lim := range limits {
		t, ok := l.full[lim.Key]
		if !ok {
			l.makeRoom(now)
		}
		l.full[lim.Key] = max(t, now) + lim.Rule.interval()
	}
	return Reservation{l: l, limits: limits}, 0, true
}

// Cancel gives the attempt back (a sign-in that succeeded).
func (r Reservation) Cancel() {
	if r.l == nil {
		return
	}
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now().UnixNano()
	for _, lim := range r.limits {
		if t, ok := l.full[lim.Key]; ok {
			l.set(lim.Key, t-lim.Rule.interval(), now)
		}
	}
}

// Forget gives key all its attempts again.
func (l *Limiter) Forget(key Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.full, key)
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.full)
}

func (l *Limiter) set(k Key, t, now int64) {
	if t <= now {
		delete(l.full, k)
		return
	}
	l.full[k] = t
}

// sweep drops the keys that have all their attempts again: once a minute,
// or once a second when the limiter is full.
func (l *Limiter) sweep(now int64, atCap bool) {
	every := int64(time.Minute)
	if atCap {
		every = int64(time.Second)
	}
	if now-l.swept < every {
		return
	}
	l.swept = now
	for k, t := range l.full {
		if t <= now {
			delete(l.full, k)
		}
	}
}

// makeRoom keeps the limiter under Cap before a new key: it prunes, and if
// that is not enough drops the key nearest to expiry among a few taken at
// random (Go's map order), so one insert never scans every key.
func (l *Limiter) makeRoom(now int64) {
	if len(l.full) < l.Cap {
		return
	}
	l.sweep(now, true)
	for len(l.full) >= l.Cap {
		var victim Key
		least, seen := int64(0), 0
		for k, t := range l.full {
			if seen == 0 || t < least {
				victim, least = k, t
			}
			if seen++; seen == 8 {
				break
			}
		}
		delete(l.full, victim)
	}
}

// The sign-in and registration limits. A wrong password counts against the
// username from this address, against the address across usernames and,
// with a much higher ceiling, against the username from anywhere: a
// guesser is slowed, while the owner with the right password from another
// address still gets in.
var (
	signInPerPair   = Rule{Max: 5, Window: 15 * time.Minute}
	signInPerAddr   = Rule{Max: 30, Window: 15 * time.Minute}
	signInPerUser   = Rule{Max: 100, Window: 15 * time.Minute}
	registerPerAddr = Rule{Max: 10, Window: time.Hour}
)

func signInLimits(username, addr string) []Limit {
	a := addrKey(addr)
	return []Limit{
		{KeyOf("signin-pair", username, a), signInPerPair},
		{KeyOf("signin-addr", a), signInPerAddr},
		{KeyOf("signin-user", username), signInPerUser},
	}
}

func registerLimits(addr string) []Limit {
	return []Limit{{KeyOf("register-addr", addrKey(addr)), registerPerAddr}}
}

// addrKey is the part of a client address that names one client: the
// whole IPv4 address, or the /64 of an IPv6 one (one host usually holds a
// whole /64, so counting single IPv6 addresses would count nothing).
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
