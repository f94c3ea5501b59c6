package main

import (
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/go-webauthn/webauthn/webauthn"

	"braid/internal/auth"
)

// relyingParty binds passkeys to the site's address: --base-url when
// given; else, when serving on a loopback address, http://localhost:PORT
// (browsers refuse passkeys for an IP address, and treat localhost as a
// secure origin). Anything else leaves passkeys off, with a warning.
func relyingParty(base string, addr net.Addr, log *slog.Logger) *webauthn.WebAuthn {
	if base == "" {
		tcp, ok := addr.(*net.TCPAddr)
		if !ok || !tcp.IP.IsLoopback() {
			log.Warn("passkeys are off: set --base-url to the site's address as people reach it")
			return nil
		}
		base = "http://localhost:" + strconv.Itoa(tcp.Port)
	}
	rp, err := auth.NewRelyingParty(strings.TrimRight(base, "/"))
	if err != nil {
		log.Warn("passkeys are off", slog.Any("err", err))
		return nil
	}
	log.Info("passkeys on", slog.String("origin", rp.Config.RPOrigins[0]))
	return rp
}
