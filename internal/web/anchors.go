package web

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/anchor"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/templates"
)

func (env *Env) loadAnchor(c echo.Context) (anchor.Anchor, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return anchor.Anchor{}, errs.E(errs.NotFound, "There is no anchor %q.", c.Param("id"))
	}
	return anchor.Get(c.Request().Context(), env.DB.Read, id)
}

// Anchor shows one anchor, its receipt and how to check it independently.
func (env *Env) Anchor(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := env.loadAnchor(c)
	if err != nil {
		return err
	}
	v := templates.AnchorView{ID: a.ID, Position: a.Head.Position, Hash: events.Hex(a.Head.Hash), Witness: a.Receipt.Witness,
		AnchoredAt: a.AnchoredAt.UTC().Format(events.TimeFormat), Size: len(a.Receipt.Data)}
	keys := make([]string, 0, len(a.Receipt.Details))
	for k := range a.Receipt.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Details = append(v.Details, [2]string{k, a.Receipt.Details[k]})
	}
	switch a.Receipt.Witness {
	case anchor.EVMName:
		v.Payload = hex.EncodeToString(anchor.ExpectedEVMPayload(a))
		v.V2 = a.Receipt.Details["payload"] == anchor.EVMPrefixV2
	case anchor.RFC3161Name:
		d, text := anchor.Imprint(a)
		v.Digest, v.DigestText, v.V2 = hex.EncodeToString(d[:]), text, text != ""
	}
	r, err := anchor.Check(ctx, env.DB.Read, a, nil)
	switch {
	case err != nil:
		return err
	case r.Missing:
		v.Check = fmt.Sprintf("The log has no event at position %d any more: it was cut short after this anchor.", a.Head.Position)
	case !r.OK:
		v.Check = fmt.Sprintf("The log's hash at position %d is now %s, not the anchored one: the log was rewritten.", a.Head.Position, events.Hex(r.Found))
	default:
		v.CheckOK = true
		v.Check = fmt.Sprintf("The anchored hash matches the log at position %d.", a.Head.Position)
	}
	if WantsJSON(c) {
		return c.JSON(http.StatusOK, map[string]any{"id": a.ID, "position": a.Head.Position, "hash": v.Hash, "witness": v.Witness,
			"anchored_at": v.AnchoredAt, "details": a.Receipt.Details, "receipt": hex.EncodeToString(a.Receipt.Data), "matches_log": v.CheckOK})
	}
	return Render(c, http.StatusOK, templates.Anchor(env.Page(c, "Anchor #"+c.Param("id"), "verify"), v))
}

// AnchorReceipt sends the receipt as the witness gave it.
func (env *Env) AnchorReceipt(c echo.Context) error {
	a, err := env.loadAnchor(c)
	if err != nil {
		return err
	}
	typ, ext := "application/octet-stream", "bin"
	switch a.Receipt.Witness {
	case anchor.RFC3161Name:
		typ, ext = "application/timestamp-reply", "tsr"
	case anchor.EVMName:
		typ, ext = "application/json", "json"
	default:
		if strings.HasPrefix(a.Receipt.Witness, anchor.TlogName+":") {
			typ, ext = "text/plain; charset=utf-8", "txt"
		}
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="anchor-%d.%s"`, a.ID, ext))
	return c.Blob(http.StatusOK, typ, a.Receipt.Data)
}
