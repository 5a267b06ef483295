package cachetest

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// sysProcAttr makes the kernel kill a throwaway server when the test process dies, so that a
// test binary killed by its timeout leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockPort reserves port among the throwaway servers of every test process on this machine
// with an exclusive flock on a file named after it; the kernel drops the lock when the
// process dies.
func lockPort(port int) (unlock func(), ok bool) {
	dir := filepath.Join(os.TempDir(), "storefront-cachetest-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return func() {}, true // no reservations possible: rely on the listen check
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return func() {}, true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return func() { _ = f.Close() }, true
}
