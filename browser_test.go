package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/homegoods/storefront/db/dbtest"
)

// chromiumEnv names Debian's Chromium for the browser tests; scripts/test.sh sets it,
// installing the package when it is missing.
const chromiumEnv = "CHROMIUM_BIN"

// screenshotDir is where the browser tests leave screenshots for people to look at.
const screenshotDir = ".run/screenshots"

// chromiumPath returns the Chromium to drive: under `make test` its absence fails the
// test, in a plain `go test` it skips it.
func chromiumPath(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(chromiumEnv)
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv(dbtest.RequireEnv) != "" {
		t.Fatalf("no Chromium at %s: scripts/test.sh installs Debian's chromium and sets %s", bin, chromiumEnv)
	}
	t.Skipf("needs Debian's chromium: run `make test`, or install it and set %s", chromiumEnv)
	return ""
}

// browser is one tab of a headless Chromium whose network reaches the server under test
// and nothing else: every other address goes to a proxy that does not exist, and no host
// name resolves. It records what a person would call broken: console errors, uncaught
// exceptions, failed requests, and any request that leaves the server.
type browser struct {
	t      testing.TB
	ctx    context.Context // the tab
	origin string          // http://127.0.0.1:port of the server under test

	mu       sync.Mutex
	problems []string
	frames   []string // text frames the page's websockets received
	requests int
}

// newBrowser starts Chromium with a fresh profile, opens a tab and sends it to base+path.
func newBrowser(t testing.TB, base, path string) *browser {
	t.Helper()
	bin := chromiumPath(t)
	b := &browser{t: t, origin: base}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium bypasses proxies for loopback addresses only: everything else is sent to
		// a port where nothing listens, and fails.
		chromedp.ProxyServer("http://127.0.0.1:1"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.record))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b.ctx = ctx
	// The first run starts the browser, which lives as long as that run's context: the
	// tab's own, without the timeout of later steps.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, log.Enable, cdp.Empty{})
		return err
	}))
	b.do(chromedp.Navigate(base + path))
	return b
}

// record notes the events that matter; it runs on the tab's reading loop, so it only
// appends.
func (b *browser) record(ev any) {
	var problem string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			problem = "console." + string(e.Type) + ": " + consoleText(e.Args)
		}
	case *runtime.EventExceptionThrown:
		problem = "uncaught: " + e.ExceptionDetails.Text
		if x := e.ExceptionDetails.Exception; x != nil {
			problem += " " + x.Description
		}
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			problem = fmt.Sprintf("log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		b.mu.Lock()
		b.requests++
		b.mu.Unlock()
		problem = b.outside(e.Request.URL)
	case *network.EventWebSocketCreated:
		problem = b.outside(e.URL)
	case *network.EventResponseReceived:
		if e.Response.Status >= 400 {
			problem = fmt.Sprintf("%d from %s", e.Response.Status, e.Response.URL)
		}
	case *network.EventLoadingFailed:
		if !e.Canceled {
			problem = fmt.Sprintf("request failed (%s): %s", e.Type, e.ErrorText)
		}
	case *network.EventWebSocketFrameReceived:
		b.mu.Lock()
		b.frames = append(b.frames, string(e.Response.PayloadData))
		b.mu.Unlock()
	}
	if problem != "" {
		b.mu.Lock()
		b.problems = append(b.problems, problem)
		b.mu.Unlock()
	}
}

// outside says why a request to url leaves the server under test, or "" when it does not.
func (b *browser) outside(url string) string {
	ws := "ws" + strings.TrimPrefix(b.origin, "http")
	for _, ok := range []string{b.origin + "/", ws + "/", "data:", "blob:"} {
		if strings.HasPrefix(url, ok) {
			return ""
		}
	}
	return "request outside the server: " + url
}

func consoleText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		if len(a.Value) > 0 {
			parts = append(parts, string(a.Value))
		} else {
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

// do runs steps in the tab, failing the test on the first error.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\nproblems so far: %v", err, b.problemsSoFar())
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is truthy, up to within; what says what
// was awaited when it never is.
func (b *browser) waitFor(what, expr string, within time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, within+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\nproblems so far: %v\nthe page then: %s", what, err, b.problemsSoFar(), b.failureShot())
	}
}

// failureShot saves what the page shows when a test fails and says where.
func (b *browser) failureShot() string {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "no screenshot: " + err.Error()
	}
	path := filepath.Join(screenshotDir, "failed-"+strings.ReplaceAll(b.t.Name(), "/", "-")+".png")
	if err := errors.Join(os.MkdirAll(screenshotDir, 0o755), os.WriteFile(path, png, 0o644)); err != nil {
		return "no screenshot: " + err.Error()
	}
	return path
}

// typeInto clicks the element and types text as keystrokes. (Not chromedp.SendKeys: it
// reads the node's attributes unlocked while DOM events change them, which -race reports.)
func (b *browser) typeInto(selector, text string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(selector)), chromedp.KeyEvent(text))
}

// setValue sets the value of an input or select as the page's own code sees a change
// (React listens to the input and change events, and keeps its own copy of the value).
func (b *browser) setValue(selector, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), "value").set.call(el, %q);
		el.dispatchEvent(new Event("input", {bubbles: true}));
		el.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, selector, value))
}

// setField replaces the text of an input by typing, as a person would.
func (b *browser) setField(selector, text string) {
	b.t.Helper()
	b.do(chromedp.Focus(chromedp.CSS(selector)), chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent(text))
}

func (b *browser) click(selector string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(selector)))
}

// screenshots writes the page at phone (390 px) and desktop (1440 px) width to
// .run/screenshots/name-390.png and name-1440.png, and leaves the tab at desktop width.
func (b *browser) screenshots(name string) {
	b.t.Helper()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, size := range []struct{ w, h int64 }{{390, 844}, {1440, 900}} {
		b.do(chromedp.EmulateViewport(size.w, size.h))
		// Let layout and the charts follow the new width before the picture.
		if w := eval[int64](b, "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(innerWidth))))"); w != size.w {
			b.t.Fatalf("screenshot %s: the page is %d px wide; want %d", name, w, size.w)
		}
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot %s at %d px: %v", name, size.w, err)
		}
		path := filepath.Join(screenshotDir, fmt.Sprintf("%s-%d.png", name, size.w))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// requestCount is how many requests the page has made so far.
func (b *browser) requestCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

func (b *browser) problemsSoFar() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// framesWith returns the websocket frames received so far that contain every part.
func (b *browser) framesWith(parts ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
next:
	for _, f := range b.frames {
		for _, p := range parts {
			if !strings.Contains(f, p) {
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}

// assertClean fails the test for every console error, failed request and request outside
// the server seen so far.
func (b *browser) assertClean() {
	b.t.Helper()
	b.mu.Lock()
	requests := b.requests
	b.mu.Unlock()
	if requests == 0 {
		b.t.Error("the browser recorded no request at all: the network events are not reaching the test")
	}
	for _, p := range b.problemsSoFar() {
		b.t.Error(p)
	}
}
