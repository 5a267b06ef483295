// Package mail sends the storefront's mails to customers: the change feed's "email"
// consumer turns the outbox's customer.mail events into messages and hands them to a Sender,
// SMTP in production and the log in development.
package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Message is one mail. ID becomes its Message-ID: the same event always gives the same id,
// so that a mail sent twice (delivery is at least once) reads as one in the recipient's
// mailbox.
type Message struct {
	ID      string
	To      string
	Subject string
	Body    string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through an SMTP server (a relay or a mail provider's submission port): STARTTLS
// whenever the server offers it, and authentication (PLAIN) when a user is set, which
// net/smtp allows only over TLS or to localhost.
type SMTP struct {
	Addr, From     string
	User, Password string
	// Timeout bounds one delivery (default 30s).
	Timeout time.Duration
}

// Send delivers m.
func (s SMTP) Send(ctx context.Context, m Message) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if err := s.deliver(c, host, m); err != nil {
		return fmt.Errorf("smtp: to %s: %w", m.To, err)
	}
	return c.Quit()
}

func (s SMTP) deliver(c *smtp.Client, host string, m Message) error {
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	if err := c.Rcpt(m.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(format(s.From, m)); err != nil {
		return err
	}
	return w.Close()
}

// format renders m as an RFC 5322 message with CRLF line ends.
func format(from string, m Message) []byte {
	var b strings.Builder
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from)
	header("To", m.To)
	header("Subject", m.Subject)
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+m.ID+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	for line := range strings.Lines(m.Body) {
		b.WriteString(strings.TrimRight(line, "\r\n") + "\r\n")
	}
	return []byte(b.String())
}

// Log "sends" by logging the message: the sender of `make run`, whose links are then read
// in the server's log.
type Log struct{ Log *slog.Logger }

// Send logs m.
func (l Log) Send(ctx context.Context, m Message) error {
	l.Log.InfoContext(ctx, "mail (logged, not sent: set SMTP_ADDR to send)", "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}

// messageID returns the Message-ID of the mail of an outbox event: the same across
// redeliveries of the event.
func messageID(eventID int64, domain string) string {
	return fmt.Sprintf("event-%d@%s", eventID, domain)
}
