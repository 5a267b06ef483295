// Package mailtest runs a real SMTP server on loopback for tests: what the server's mail
// sender delivers is read back from it, parsed as mail.
package mailtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one mail the server accepted.
type Received struct {
	From, To string
	Header   mail.Header
	Body     string
}

// Server is an SMTP server on 127.0.0.1 that keeps every mail it accepts.
type Server struct {
	Addr string

	mu      sync.Mutex
	mails   []Received
	arrived chan struct{}
	refuse  map[string]int // recipient -> SMTP code to answer RCPT with
}

// Start runs a server until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{arrived: make(chan struct{}), refuse: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: listen: %v", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }))
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	s.Addr = ln.Addr().String()
	return s
}

// Refuse makes the server answer RCPT TO:<to> with code (550: no such mailbox, for good;
// 451: try again later); code 0 accepts again.
func (s *Server) Refuse(to string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[strings.ToLower(to)] = code
}

// Mails returns the mails accepted so far.
func (s *Server) Mails() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.mails...)
}

// Wait returns the first mail to the address (any case) whose subject contains subject,
// waiting for it up to timeout; it fails the test without one.
func (s *Server) Wait(tb testing.TB, to, subject string, timeout time.Duration) Received {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		s.mu.Lock()
		arrived := s.arrived
		for _, m := range s.mails {
			if strings.EqualFold(m.To, to) && strings.Contains(m.Header.Get("Subject"), subject) {
				s.mu.Unlock()
				return m
			}
		}
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			tb.Fatalf("mailtest: no mail to %s about %q in %s; got %d others", to, subject, timeout, len(s.Mails()))
		}
	}
}

func (s *Server) add(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails = append(s.mails, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// session is one SMTP transaction's state.
type session struct {
	srv      *Server
	from, to string
}

func (x *session) Reset()        { x.from, x.to = "", "" }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.srv.mu.Lock()
	code := x.srv.refuse[strings.ToLower(to)]
	x.srv.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, Message: "refused by the test"}
	}
	x.to = to
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "not a mail: " + err.Error()}
	}
	body, _ := io.ReadAll(m.Body)
	x.srv.add(Received{From: x.from, To: x.to, Header: m.Header, Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	return nil
}
