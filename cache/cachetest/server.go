package cachetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ports of throwaway servers come from below Linux's default ephemeral range (32768-60999),
// so that a client connection's local port cannot take a stopped server's port before the
// server starts again, and away from the fixed ports of scripts/ (6380-6382, 7101-7103 and
// the cluster bus ports 17101-17103).
const (
	minPort = 20000
	maxPort = 32000
)

// startTimeout bounds how long a throwaway server may take to answer PING.
const startTimeout = 20 * time.Second

// Server is a throwaway redis-server process of one test, on a loopback port of its own, that
// keeps nothing on disk. A test may Stop it (SIGKILL, as a crash) in the middle of a load and
// Start it again, empty, on the same address. Its methods must be called from the test's own
// goroutine, as they end the test on failure.
type Server struct {
	tb       testing.TB
	bin, dir string
	port     int
	unlock   func() // releases the port reservation

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
}

// StartServer starts a throwaway redis-server (REDIS_SERVER_BIN, or redis-server in PATH) on
// a free loopback port, waits until it answers PING and stops it when tb ends. Without
// redis-server it skips tb (fails it under make test).
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: serverBin(tb), dir: tb.TempDir()}
	tb.Cleanup(s.release)
	var errs []error
	for range 10 {
		port, unlock, err := reservePort()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.port, s.unlock = port, unlock
		err = s.start()
		if err == nil {
			return s
		}
		// Another process may have taken the port since we checked it: try another.
		errs = append(errs, err)
		unlock()
		s.unlock = nil
	}
	tb.Fatalf("start a throwaway redis-server: %v", errors.Join(errs...))
	return nil
}

func serverBin(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv(ServerBinEnv); bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s=%s: %v", ServerBinEnv, bin, err)
		}
		return bin
	}
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("redis-server is not in PATH and %s is not set: `make test` sets it", ServerBinEnv)
	}
	tb.Skipf("needs redis-server: run `make test`, or install redis-server or set %s to its path", ServerBinEnv)
	return ""
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server's redis:// URL (database 0).
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop kills the server (SIGKILL: no shutdown, as in a crash) and waits until it has exited.
// It does nothing when the server is stopped.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only when it has exited already
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Start starts the server again on the same address, empty, and waits until it answers PING.
// It does nothing when the server runs.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	if err := s.startLocked(); err != nil {
		s.tb.Fatalf("restart redis-server on %s: %v", s.Addr(), err)
	}
}

func (s *Server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Server) startLocked() error {
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logFile,
		"--daemonize", "no",
		"--always-show-logo", "no",
		// DEBUG SLEEP and friends, for tests that simulate a slow server.
		"--enable-debug-command", "local",
	)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	failed := func(why string) error {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s %s: %s%s", s.Addr(), why,
			strings.TrimSpace(stderr.String()), tail(logFile))
	}
	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr())
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			return failed(fmt.Sprintf("did not answer within %v (%v)", startTimeout, err))
		}
		select {
		case <-exited:
			return failed("exited while starting")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends PING on a connection of its own and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// tail returns the last lines of the log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n--- " + path + " ---\n" + strings.Join(lines, "\n")
}

// reservePort picks a free loopback port in [minPort, maxPort) that no other throwaway
// server of this machine holds, and reserves it (a lock file, where the platform has them)
// until unlock is called.
func reservePort() (port int, unlock func(), err error) {
	for range 50 {
		port = minPort + rand.IntN(maxPort-minPort)
		unlock, ok := lockPort(port)
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			unlock()
			continue
		}
		_ = l.Close()
		return port, unlock, nil
	}
	return 0, nil, errors.New("no free loopback port found")
}
