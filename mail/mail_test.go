package mail_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/mail"
	"github.com/homegoods/storefront/mail/mailtest"
)

func TestSMTPDelivers(t *testing.T) {
	srv := mailtest.Start(t)
	s := mail.SMTP{Addr: srv.Addr, From: "shop@example.com"}
	err := s.Send(context.Background(), mail.Message{ID: "event-7@shop.example", To: "ann@example.com",
		Subject: "Hello", Body: "line one\nline two\n"})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Wait(t, "ann@example.com", "Hello", 5*time.Second)
	if m.From != "shop@example.com" || m.Header.Get("Message-ID") != "<event-7@shop.example>" || m.Body != "line one\nline two\n" {
		t.Fatalf("got from %q, message id %q, body %q", m.From, m.Header.Get("Message-ID"), m.Body)
	}
}

func event(t *testing.T, id int64, m model.CustomerMail) model.OutboxEvent {
	t.Helper()
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return model.OutboxEvent{ID: id, Aggregate: "customer", AggregateID: "c1", Kind: model.CustomerMailEvent, Payload: payload}
}

func newConsumer(t *testing.T, srv *mailtest.Server) func(context.Context, []model.OutboxEvent) error {
	t.Helper()
	c, err := mail.NewConsumer(mail.SMTP{Addr: srv.Addr, From: "shop@example.com"}, "https://shop.example/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c.Handle
}

func TestConsumerMailsTokens(t *testing.T) {
	srv := mailtest.Start(t)
	handle := newConsumer(t, srv)
	later := time.Now().Add(time.Hour)
	events := []model.OutboxEvent{
		{ID: 1, Aggregate: "product", Kind: "product.updated", Payload: []byte(`{}`)},
		event(t, 2, model.CustomerMail{Purpose: model.VerifyEmail, Email: "ann@example.com", Name: "Ann", Token: "VERIFYTOKEN", Expires: later}),
		event(t, 3, model.CustomerMail{Purpose: model.ResetPassword, Email: "bob@example.com", Name: "Bob", Token: "RESETTOKEN", Expires: later}),
		event(t, 4, model.CustomerMail{Purpose: model.ResetPassword, Email: "old@example.com", Name: "Old", Token: "OLD", Expires: time.Now().Add(-time.Second)}),
	}
	if err := handle(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	verify := srv.Wait(t, "ann@example.com", "Confirm your email", 5*time.Second)
	if !strings.Contains(verify.Body, "https://shop.example/account/verify-email?token=VERIFYTOKEN") {
		t.Fatalf("verification mail without its link: %q", verify.Body)
	}
	if got := verify.Header.Get("Message-ID"); got != "<event-2@shop.example>" {
		t.Fatalf("Message-ID %q; want one made of the event id", got)
	}
	reset := srv.Wait(t, "bob@example.com", "Reset your password", 5*time.Second)
	if !strings.Contains(reset.Body, "https://shop.example/account/reset-password?token=RESETTOKEN") {
		t.Fatalf("reset mail without its link: %q", reset.Body)
	}
	if n := len(srv.Mails()); n != 2 {
		t.Fatalf("got %d mails; want 2 (none for other events, none for an expired token)", n)
	}
}

func TestConsumerFailures(t *testing.T) {
	srv := mailtest.Start(t)
	handle := newConsumer(t, srv)
	later := time.Now().Add(time.Hour)
	gone := event(t, 1, model.CustomerMail{Purpose: model.VerifyEmail, Email: "gone@example.com", Name: "G", Token: "T1", Expires: later})
	busy := event(t, 2, model.CustomerMail{Purpose: model.VerifyEmail, Email: "busy@example.com", Name: "B", Token: "T2", Expires: later})

	srv.Refuse("gone@example.com", 550)
	srv.Refuse("busy@example.com", 451)
	if err := handle(context.Background(), []model.OutboxEvent{gone, busy}); err == nil {
		t.Fatal("a 451 answer: got nil; want an error, so that the batch is handed again")
	}
	srv.Refuse("busy@example.com", 0)
	if err := handle(context.Background(), []model.OutboxEvent{gone, busy}); err != nil {
		t.Fatalf("a 550 answer: got %v; want the mail dropped and the batch done", err)
	}
	srv.Wait(t, "busy@example.com", "Confirm", 5*time.Second)
	if n := len(srv.Mails()); n != 1 {
		t.Fatalf("got %d mails; want the one that was accepted", n)
	}

	unreachable, err := mail.NewConsumer(mail.SMTP{Addr: "127.0.0.1:1", From: "shop@example.com"}, "https://shop.example", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := unreachable.Handle(context.Background(), []model.OutboxEvent{busy}); err == nil {
		t.Fatal("an unreachable server: got nil; want an error")
	}
}

func TestNewConsumerWantsAbsoluteURL(t *testing.T) {
	if _, err := mail.NewConsumer(mail.Log{}, "/relative", nil); err == nil {
		t.Fatal("a relative shop url: got nil; want an error")
	}
}
