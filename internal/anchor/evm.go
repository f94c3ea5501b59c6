package anchor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"braid/internal/errs"
	"braid/internal/events"
)

// EVMName is the witness name of an EVM chain.
const EVMName = "evm"

// EVMPrefix opens the data of every anchoring transaction.
const EVMPrefix = "braid1"

// EVMPayloadLen is the length of an anchoring transaction's data: the
// prefix, the position as 8 bytes big-endian, and the 32-byte head hash.
const EVMPayloadLen = len(EVMPrefix) + 8 + 32

// EVMPayload returns the transaction data that anchors head.
func EVMPayload(head events.Head) []byte {
	b := make([]byte, 0, EVMPayloadLen)
	b = append(b, EVMPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(head.Position))
	return append(b, head.Hash[:]...)
}

// EVMPrefixV2 opens the data of an anchoring transaction that carries the
// tree root too.
const EVMPrefixV2 = "braid2"

// EVMPayloadV2Len is the length of a v2 anchoring transaction's data: the
// prefix, the position (8 bytes big-endian), the head hash and the root of
// the tree of position leaves (32 bytes each).
const EVMPayloadV2Len = len(EVMPrefixV2) + 8 + 32 + 32

// EVMPayloadV2 returns the transaction data that anchors head and the
// tree root at the same size.
func EVMPayloadV2(head events.Head, root [32]byte) []byte {
	b := make([]byte, 0, EVMPayloadV2Len)
	b = append(b, EVMPrefixV2...)
	b = binary.BigEndian.AppendUint64(b, uint64(head.Position))
	b = append(b, head.Hash[:]...)
	return append(b, root[:]...)
}

// ParseEVMPayload reads the head out of an anchoring transaction's data.
func ParseEVMPayload(data []byte) (events.Head, error) {
	var h events.Head
	if len(data) == EVMPayloadV2Len && bytes.HasPrefix(data, []byte(EVMPrefixV2)) {
		data = data[:EVMPayloadLen] // the same layout, the root after
	} else if len(data) != EVMPayloadLen || !bytes.HasPrefix(data, []byte(EVMPrefix)) {
		return h, errs.E(errs.Invalid, "transaction data 0x%x is not a braid1 anchor", data)
	}
	h.Position = int64(binary.BigEndian.Uint64(data[len(EVMPrefix):]))
	copy(h.Hash[:], data[len(EVMPrefix)+8:])
	return h, nil
}

// EVMClient is the part of an Ethereum JSON-RPC client the witness uses;
// *ethclient.Client and the simulated backend's client both have it.
type EVMClient interface {
	ChainID(ctx context.Context) (*big.Int, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (tx *types.Transaction, isPending bool, err error)
}

// DialEVM connects to a JSON-RPC endpoint (http, https, ws or ipc).
func DialEVM(ctx context.Context, url string) (*ethclient.Client, error) {
	c, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("evm: dial %s: %w", url, err)
	}
	return c, nil
}

// LoadKey reads a hex secp256k1 private key (with or without 0x) from path.
// The error never shows the file's content.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	s := strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
	k, err := ethcrypto.HexToECDSA(s)
	if err != nil {
		return nil, errs.E(errs.Invalid, "key file %s does not hold a hex private key", path)
	}
	return k, nil
}

// EVM anchors a head by sending a transaction to itself whose data is
// EVMPayload(head); the chain's block then dates the head.
type EVM struct {
	Client EVMClient
	// Key signs the anchoring transactions; Check does not need it.
	Key *ecdsa.PrivateKey
	// ChainID, when set, is the chain the node must be on (--chain-id), so
	// a key is never spent on the wrong chain by mistake.
	ChainID *big.Int
	// Poll is how often to ask whether the transaction is mined (default
	// 1 s); Wait is how long to keep asking (default 2 min).
	Poll, Wait time.Duration
	// Root, when set, gives the tree root at the head's position: the
	// transaction then carries EVMPayloadV2 (head and root), else
	// EVMPayload (v1). Check accepts either.
	Root RootFunc
}

// evmReceipt is the stored receipt: JSON, readable by people and tools.
type evmReceipt struct {
	ChainID uint64 `json:"chain_id"`
	Tx      string `json:"tx"`
	Block   uint64 `json:"block"`
	From    string `json:"from"`
}

// Name returns "evm".
func (*EVM) Name() string { return EVMName }

// rpcErr classifies an error from estimating or sending the transaction:
// the node answering with a JSON-RPC error (say "insufficient funds") is a
// refusal; anything else means it could not be reached. Errors while only
// reading (chain id, nonce, receipts) are never refusals: a node may answer
// "transaction indexing is in progress" and be right a minute later.
func rpcErr(op string, err error) error {
	var re rpc.Error
	if errors.As(err, &re) {
		return refused("evm: %s: %v", op, err)
	}
	return fmt.Errorf("evm: %s: %w", op, err)
}

func (w *EVM) chainID(ctx context.Context) (*big.Int, error) {
	id, err := w.Client.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("evm: chain id: %w", err)
	}
	if w.ChainID != nil && w.ChainID.Cmp(id) != 0 {
		return nil, refused("evm: the node is on chain %v, want --chain-id %v", id, w.ChainID)
	}
	if !id.IsUint64() {
		return nil, refused("evm: chain id %v does not fit 64 bits", id)
	}
	return id, nil
}

// Anchor sends a self-send DynamicFeeTx carrying EVMPayload(head), waits
// until it is mined with status 1, and returns chain id, transaction hash
// and block number as the receipt.
func (w *EVM) Anchor(ctx context.Context, head events.Head) (Receipt, error) {
	if w.Key == nil {
		return Receipt{}, errs.E(errs.Invalid, "evm: no --key-file given")
	}
	chainID, err := w.chainID(ctx)
	if err != nil {
		return Receipt{}, err
	}
	from := ethcrypto.PubkeyToAddress(w.Key.PublicKey)
	data := EVMPayload(head)
	if root, ok, err := rootAt(ctx, w.Root, head); err != nil {
		return Receipt{}, fmt.Errorf("evm: %w", err)
	} else if ok {
		data = EVMPayloadV2(head, root)
	}
	nonce, err := w.Client.PendingNonceAt(ctx, from)
	if err != nil {
		return Receipt{}, fmt.Errorf("evm: nonce: %w", err)
	}
	tip, err := w.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return Receipt{}, fmt.Errorf("evm: gas tip: %w", err)
	}
	latest, err := w.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return Receipt{}, fmt.Errorf("evm: latest block: %w", err)
	}
	if latest.BaseFee == nil {
		return Receipt{}, refused("evm: chain %v has no base fee (before London); a dynamic-fee transaction cannot be sent", chainID)
	}
	feeCap := new(big.Int).Add(tip, new(big.Int).Mul(latest.BaseFee, big.NewInt(2)))
	gas, err := w.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &from, GasFeeCap: feeCap, GasTipCap: tip, Data: data})
	if err != nil {
		return Receipt{}, rpcErr("estimate gas", err)
	}
	tx, err := types.SignNewTx(w.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &from, Data: data,
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("evm: sign: %w", err)
	}
	if err := w.Client.SendTransaction(ctx, tx); err != nil {
		return Receipt{}, rpcErr("send transaction", err)
	}
	rec, err := w.waitMined(ctx, tx.Hash())
	if err != nil {
		return Receipt{}, err
	}
	if rec.Status != types.ReceiptStatusSuccessful {
		return Receipt{}, refused("evm: transaction %s failed in block %v (status %d)", tx.Hash().Hex(), rec.BlockNumber, rec.Status)
	}
	er := evmReceipt{ChainID: chainID.Uint64(), Tx: tx.Hash().Hex(), Block: rec.BlockNumber.Uint64(), From: from.Hex()}
	blob, err := json.Marshal(er)
	if err != nil {
		return Receipt{}, fmt.Errorf("evm: encode receipt: %w", err)
	}
	r := Receipt{Witness: EVMName, Data: blob, Details: map[string]string{
		"chain_id": strconv.FormatUint(er.ChainID, 10),
		"tx":       er.Tx,
		"block":    strconv.FormatUint(er.Block, 10),
		"from":     er.From,
	}}
	if len(data) == EVMPayloadV2Len {
		r.Details["payload"] = EVMPrefixV2
		r.Details["root"] = base64.StdEncoding.EncodeToString(data[EVMPayloadLen:])
	}
	return r, nil
}

func (w *EVM) waitMined(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	poll, wait := w.Poll, w.Wait
	if poll <= 0 {
		poll = time.Second
	}
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		// Like go-ethereum's bind.WaitMined, keep asking through errors: not
		// found yet, indexing in progress, a dropped connection.
		rec, err := w.Client.TransactionReceipt(ctx, h)
		if err == nil {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("evm: transaction %s not mined after %v (last answer: %v)", h.Hex(), wait, err)
		case <-time.After(poll):
		}
	}
}

// Check reads the transaction named by r back from the chain and verifies
// that it is mined, succeeded, sits in the recorded block, was sent by the
// recorded account, and carries exactly EVMPayload(head).
func (w *EVM) Check(ctx context.Context, head events.Head, r Receipt) error {
	var er evmReceipt
	if err := json.Unmarshal(r.Data, &er); err != nil {
		return refused("evm: receipt is not JSON: %v", err)
	}
	if len(er.Tx) != 66 || !strings.HasPrefix(er.Tx, "0x") {
		return refused("evm: receipt names transaction %q, want 0x and 64 hex digits", er.Tx)
	}
	chainID, err := w.chainID(ctx)
	if err != nil {
		return err
	}
	if chainID.Uint64() != er.ChainID {
		return refused("evm: receipt is for chain %d, the node is on chain %v", er.ChainID, chainID)
	}
	h := common.HexToHash(er.Tx)
	tx, pending, err := w.Client.TransactionByHash(ctx, h)
	if errors.Is(err, ethereum.NotFound) {
		return refused("evm: chain %d has no transaction %s", er.ChainID, er.Tx)
	}
	if err != nil {
		return fmt.Errorf("evm: transaction %s: %w", er.Tx, err)
	}
	if pending {
		return refused("evm: transaction %s is not mined yet", er.Tx)
	}
	want := EVMPayload(head)
	if bytes.HasPrefix(tx.Data(), []byte(EVMPrefixV2)) {
		root, ok, err := rootAt(ctx, w.Root, head)
		if err != nil {
			return err
		}
		if !ok {
			return refused("evm: transaction %s anchors the tree root too, and the log has no tree of %d leaves to compare it with", er.Tx, head.Position)
		}
		want = EVMPayloadV2(head, root)
	}
	if !bytes.Equal(tx.Data(), want) {
		if got, perr := ParseEVMPayload(tx.Data()); perr == nil {
			return refused("evm: transaction %s anchors position %d hash %s, want position %d hash %s",
				er.Tx, got.Position, hexHash(got.Hash), head.Position, hexHash(head.Hash))
		}
		return refused("evm: transaction %s carries data 0x%x, want 0x%x", er.Tx, tx.Data(), want)
	}
	sender, err := types.Sender(types.LatestSignerForChainID(chainID), tx)
	if err != nil {
		return refused("evm: transaction %s: sender: %v", er.Tx, err)
	}
	if !strings.EqualFold(sender.Hex(), er.From) {
		return refused("evm: transaction %s was sent by %s, receipt says %s", er.Tx, sender.Hex(), er.From)
	}
	rec, err := w.Client.TransactionReceipt(ctx, h)
	if errors.Is(err, ethereum.NotFound) {
		return refused("evm: transaction %s has no receipt", er.Tx)
	}
	if err != nil {
		return fmt.Errorf("evm: receipt of %s: %w", er.Tx, err)
	}
	if rec.Status != types.ReceiptStatusSuccessful {
		return refused("evm: transaction %s failed (status %d)", er.Tx, rec.Status)
	}
	if rec.BlockNumber == nil || rec.BlockNumber.Uint64() != er.Block {
		return refused("evm: transaction %s is in block %v, receipt says %d", er.Tx, rec.BlockNumber, er.Block)
	}
	return nil
}
