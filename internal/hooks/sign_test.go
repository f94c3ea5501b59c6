package hooks

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// The Standard Webhooks reference libraries' test vector.
func TestSignStandardVector(t *testing.T) {
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestPrivate(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"10.0.0.1", true}, {"172.16.5.4", true}, {"192.168.1.1", true}, {"169.254.169.254", true},
		{"100.64.0.1", true}, {"0.0.0.0", true}, {"::1", true}, {"fc00::1", true}, {"fe80::1", true}, {"::ffff:127.0.0.1", true},
		{"93.184.216.34", false}, {"2606:4700::1111", false},
	} {
		if got := Private(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("Private(%s): got %v, want %v", c.ip, got, c.want)
		}
	}
	if err := CheckURL(context.Background(), "http://169.254.169.254/latest/meta-data", false); err == nil {
		t.Error("the cloud metadata address was allowed")
	}
}
