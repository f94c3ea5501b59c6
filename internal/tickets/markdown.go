package tickets

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/auth"
	"braid/internal/markdown"
	"braid/internal/web"
	"braid/templates"
)

var mentionRE = regexp.MustCompile(`@([A-Za-z0-9_-]{3,32})`)

// known looks up, once each, the @names the texts mention (at most 50 per
// page): a mention of nobody stays plain text.
func (h *Handlers) known(ctx context.Context, texts ...string) markdown.Known {
	found := map[string]bool{}
	for _, t := range texts {
		if !strings.Contains(t, "@") {
			continue
		}
		for _, m := range mentionRE.FindAllStringSubmatch(t, -1) {
			n := strings.ToLower(m[1])
			if _, seen := found[n]; seen || len(found) >= 50 {
				continue
			}
			_, err := auth.IDByUsername(ctx, h.Env.DB.Read, n)
			found[n] = err == nil
		}
	}
	return func(name string) bool { return found[strings.ToLower(name)] }
}

// renderMarkdown fills the page's rendered body and comments.
func (h *Handlers) renderMarkdown(ctx context.Context, v *templates.TicketView) {
	texts := []string{v.Body}
	for _, c := range v.Comments {
		texts = append(texts, c.Body)
	}
	k := h.known(ctx, texts...)
	v.BodyHTML = markdown.RenderKnown(v.Body, k)
	for i := range v.Comments {
		v.Comments[i].BodyHTML = markdown.RenderKnown(v.Comments[i].Body, k)
	}
}

// preview renders one text as the person would see it posted.
func (h *Handlers) preview(ctx context.Context, text string) templates.Preview {
	return templates.Preview{Shown: true, HTML: markdown.RenderKnown(text, h.known(ctx, text))}
}

// wantsPreview says the form was posted with its Preview button: show it
// again with the rendered text, append nothing.
func wantsPreview(c echo.Context) bool { return c.FormValue("preview") != "" && !web.WantsJSON(c) }

// previewNew re-shows the new-ticket form with its description rendered.
func (h *Handlers) previewNew(c echo.Context, f templates.Form) error {
	ps, err := h.openable(c)
	if err != nil {
		return err
	}
	f.Preview = h.preview(c.Request().Context(), f.V("body"))
	return web.Render(c, http.StatusOK, templates.NewTicket(h.Env.Page(c, "New ticket", "new"), f, ps))
}

// previewComment re-shows the ticket with the comment being written
// rendered below its form.
func (h *Handlers) previewComment(c echo.Context, body string) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := Get(ctx, h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	v, err := h.view(c, t)
	if err != nil {
		return err
	}
	v.Users = h.usernames(ctx)
	v.CommentForm.Values["body"] = body
	v.CommentForm.Preview = h.preview(ctx, body)
	return web.Render(c, http.StatusOK, templates.TicketPage(h.Env.Page(c, t.Title, "tickets"), v))
}
