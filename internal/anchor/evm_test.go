package anchor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"braid/internal/anchor"
	"braid/internal/anchor/anchortest"
	"braid/internal/events"
)

// simChain is go-ethereum's simulated backend with one funded account,
// mining a block every few milliseconds while the test runs.
func simChain(tb testing.TB) (*anchor.EVM, *simulated.Backend) {
	tb.Helper()
	key, err := ethcrypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	addr := ethcrypto.PubkeyToAddress(key.PublicKey)
	sim := simulated.NewBackend(types.GenesisAlloc{addr: {Balance: new(big.Int).Lsh(big.NewInt(1), 80)}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sim.Commit()
			}
		}
	}()
	tb.Cleanup(func() {
		close(stop)
		wg.Wait()
		sim.Close()
	})
	return &anchor.EVM{Client: sim.Client(), Key: key, Poll: 5 * time.Millisecond, Wait: 30 * time.Second}, sim
}

func TestEVMPayload(t *testing.T) {
	h := testHead(0x0102030405060708, "x")
	p := anchor.EVMPayload(h)
	if got, want := hex.EncodeToString(p[:14]), hex.EncodeToString([]byte("braid1"))+"0102030405060708"; got != want {
		t.Fatalf("payload start: got %s, want %s", got, want)
	}
	if len(p) != 46 || !bytes.Equal(p[14:], h.Hash[:]) {
		t.Fatalf("payload: got %x (%d bytes), want prefix, position and hash (46 bytes)", p, len(p))
	}
	back, err := anchor.ParseEVMPayload(p)
	if err != nil || back != h {
		t.Fatalf("parse payload: got %v %v, want %v", back, err, h)
	}
	if _, err := anchor.ParseEVMPayload(p[1:]); err == nil {
		t.Fatal("parse a short payload: got nil error, want one")
	}
}

func TestEVMSimulated(t *testing.T) {
	ctx := context.Background()
	w, _ := simChain(t)
	head := testHead(42, "forty-two")

	r, err := w.Anchor(ctx, head)
	if err != nil {
		t.Fatalf("anchor: %v", err)
	}
	if r.Witness != "evm" || r.Details["chain_id"] != "1337" || r.Details["tx"] == "" || r.Details["block"] == "" {
		t.Fatalf("receipt: got %s %v, want evm with chain_id 1337, tx and block", r.Witness, r.Details)
	}
	checker := &anchor.EVM{Client: w.Client} // checking needs no key
	if err := checker.Check(ctx, head, r); err != nil {
		t.Fatalf("check own receipt: %v", err)
	}

	var rec map[string]any
	if err := json.Unmarshal(r.Data, &rec); err != nil {
		t.Fatal(err)
	}
	tamper := func(k string, v any) anchor.Receipt {
		m := map[string]any{}
		for kk, vv := range rec {
			m[kk] = vv
		}
		m[k] = v
		b, _ := json.Marshal(m)
		return anchor.Receipt{Witness: "evm", Data: b}
	}
	for _, c := range []struct {
		name    string
		head    events.Head
		receipt anchor.Receipt
		want    string
	}{
		{"another hash", testHead(42, "not forty-two"), r, "anchors position 42 hash"},
		{"another position", events.Head{Position: 43, Hash: head.Hash}, r, "want position 43"},
		{"another block", head, tamper("block", 999), "receipt says 999"},
		{"another chain", head, tamper("chain_id", 1), "receipt is for chain 1"},
		{"no such tx", head, tamper("tx", "0x"+strings.Repeat("11", 32)), "has no transaction"},
		{"another sender", head, tamper("from", "0x"+strings.Repeat("22", 20)), "receipt says 0x2222"},
		{"not json", head, anchor.Receipt{Witness: "evm", Data: []byte("{")}, "not JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checker.Check(ctx, c.head, c.receipt)
			if !anchor.Refused(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, c.want)
			}
		})
	}

	// The wrong --chain-id refuses before any transaction is sent.
	wrong := *w
	wrong.ChainID = big.NewInt(5)
	if _, err := wrong.Anchor(ctx, head); !anchor.Refused(err) || !strings.Contains(err.Error(), "want --chain-id 5") {
		t.Fatalf("anchor with the wrong chain id: got %v, want a refusal", err)
	}

	// An account with no funds: the node answers with an error: refused.
	poor, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	broke := *w
	broke.Key = poor
	if _, err := broke.Anchor(ctx, head); !anchor.Refused(err) {
		t.Fatalf("anchor from an empty account: got %v, want a refusal", err)
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte("0x"+anchortest.AnvilKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := anchor.LoadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ethcrypto.PubkeyToAddress(k.PublicKey).Hex(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"; got != want {
		t.Fatalf("address of anvil key #0: got %s, want %s", got, want)
	}
	if err := os.WriteFile(p, []byte("secret-but-not-hex"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = anchor.LoadKey(p)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad key file: got %v, want an error that does not echo the file", err)
	}
}

func TestEVMAnvil(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	url := anchortest.StartAnvil(t)
	t.Logf("anvil listening after %v", time.Since(start))
	client, err := anchor.DialEVM(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	key, err := ethcrypto.HexToECDSA(anchortest.AnvilKey)
	if err != nil {
		t.Fatal(err)
	}
	w := &anchor.EVM{Client: client, Key: key, ChainID: big.NewInt(31337), Poll: 50 * time.Millisecond}
	head := testHead(9, "nine")

	start = time.Now()
	r, err := w.Anchor(ctx, head)
	if err != nil {
		t.Fatalf("anchor on anvil: %v", err)
	}
	t.Logf("anvil anchor round trip: %v, receipt %s", time.Since(start), r.Data)
	if r.Details["chain_id"] != "31337" {
		t.Errorf("chain_id: got %s, want 31337", r.Details["chain_id"])
	}
	if err := (&anchor.EVM{Client: client}).Check(ctx, head, r); err != nil {
		t.Fatalf("check on anvil: %v", err)
	}
	if err := (&anchor.EVM{Client: client}).Check(ctx, testHead(9, "not nine"), r); !anchor.Refused(err) {
		t.Fatalf("check another head on anvil: got %v, want a refusal", err)
	}

	// What docs/anchoring.md tells users: eth_getTransactionByHash and read
	// the input field.
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":["` + r.Details["tx"] + `"]}`
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Result struct {
			Input       string `json:"input"`
			BlockNumber string `json:"blockNumber"`
		} `json:"result"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	want := "0x" + hex.EncodeToString([]byte("braid1")) + "0000000000000009" + hex.EncodeToString(head.Hash[:])
	if out.Result.Input != want || out.Result.BlockNumber == "" {
		t.Fatalf("eth_getTransactionByHash input: got %q (block %q), want %q, mined", out.Result.Input, out.Result.BlockNumber, want)
	}
}
