package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"net/url"
	"time"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
)

// ConsumerName names the mail consumer of the change feed.
const ConsumerName = "email"

// NewConsumer returns the change feed's consumer that mails what customer.mail events ask
// for, through sender, with links to pages of the shop at shopURL (its /account/verify-email
// and /account/reset-password pages take the token from the query string).
//
// Mails go out at least once: a batch handed again after a failure mails its earlier events
// again, under the same Message-ID. A transient failure (the server unreachable, a 4xx
// answer) has the batch handed again; a permanent one (5xx: no such mailbox) is logged and
// the mail dropped, so that one bad address cannot hold up every mail after it. A token
// that has expired before its mail could go is not mailed. The consumer needs no resync:
// what it missed while retired the customer asks for again.
func NewConsumer(sender Sender, shopURL string, log *slog.Logger) (feed.Consumer, error) {
	u, err := url.Parse(shopURL)
	if err != nil || u.Host == "" {
		return feed.Consumer{}, fmt.Errorf("mail: shop url %q: want an absolute url", shopURL)
	}
	h := handler{sender: sender, shop: u, log: log}
	return feed.Consumer{Name: ConsumerName, Handle: h.handle}, nil
}

type handler struct {
	sender Sender
	shop   *url.URL
	log    *slog.Logger
}

func (h handler) handle(ctx context.Context, events []model.OutboxEvent) error {
	for _, e := range events {
		if e.Kind != model.CustomerMailEvent {
			continue
		}
		var m model.CustomerMail
		if err := json.Unmarshal(e.Payload, &m); err != nil {
			h.log.ErrorContext(ctx, "mail: unreadable event dropped", "event", e.ID, "err", err)
			continue
		}
		if time.Now().After(m.Expires) {
			h.log.WarnContext(ctx, "mail: token expired before its mail could go", "event", e.ID, "purpose", m.Purpose)
			continue
		}
		msg := h.render(e.ID, m)
		err := h.sender.Send(ctx, msg)
		var answer *textproto.Error
		switch {
		case errors.As(err, &answer) && answer.Code >= 500:
			h.log.ErrorContext(ctx, "mail: refused for good, dropped", "event", e.ID, "purpose", m.Purpose, "err", err)
		case err != nil:
			return err
		}
	}
	return nil
}

// render writes the mail of m.
func (h handler) render(eventID int64, m model.CustomerMail) Message {
	msg := Message{ID: messageID(eventID, h.shop.Hostname()), To: m.Email}
	expires := m.Expires.UTC().Format("2 January 2006, 15:04 MST")
	switch m.Purpose {
	case model.ResetPassword:
		msg.Subject = "Reset your password"
		msg.Body = fmt.Sprintf("Hello %s,\n\nsomeone asked to reset the password of your account. If it was you, choose a new one here:\n\n%s\n\nor give this code where you asked: %s\n\nIt works once, until %s. If it was not you, ignore this mail: your password stays as it is.\n",
			m.Name, h.link("/account/reset-password", m.Token), m.Token, expires)
	default:
		msg.Subject = "Confirm your email address"
		msg.Body = fmt.Sprintf("Hello %s,\n\nplease confirm that this is your email address:\n\n%s\n\nor give this code where you signed up: %s\n\nIt works once, until %s. Orders you placed as a guest with this address then appear in your account.\n",
			m.Name, h.link("/account/verify-email", m.Token), m.Token, expires)
	}
	return msg
}

func (h handler) link(path, token string) string {
	u := *h.shop
	u.Path = path
	u.RawQuery = url.Values{"token": {token}}.Encode()
	return u.String()
}
