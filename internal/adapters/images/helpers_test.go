package images

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// pngBytes returns a real, small PNG image.
func pngBytes(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wantError asserts that err is an *Error whose message contains want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected error containing %q, got nil", want)
	}
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("expected *images.Error, got %T: %v", err, err)
	}
	if !strings.Contains(ie.Message, want) {
		t.Fatalf("error message %q does not contain %q", ie.Message, want)
	}
	if ie.Error() != ie.Message {
		t.Fatalf("Error() = %q, want Message %q", ie.Error(), ie.Message)
	}
}

// guardedLoader returns a Loader whose dialer can never reach a non-loopback
// address, even if the code under test were broken: the production Control
// hook runs first, and if it lets a non-loopback address through the test
// fails and the guard refuses the connection before connect(2). dials counts
// the dial attempts that reached the transport.
func guardedLoader(t *testing.T, opts Options) (l *Loader, dials *atomic.Int64) {
	t.Helper()
	l = New(opts)
	t.Cleanup(l.CloseIdleConnections)
	dials = new(atomic.Int64)
	l.dialer.Control = func(network, address string, c syscall.RawConn) error {
		if err := l.control(network, address, c); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("test guard: Control allowed a connection to non-loopback %s %s", network, address)
			return errors.New("test guard: refusing non-loopback connection")
		}
		return nil
	}
	dial := l.dialer.DialContext
	l.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	return l, dials
}
