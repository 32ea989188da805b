// Package record is the encoding both response stores keep a
// domain.StoredResponse in: one value per response, the id being the key
// beside it (so it is not repeated inside).
//
// It is a small hand-written binary layout (encoding/binary varints), not
// JSON or gob: Response and Input are opaque byte strings (JSON documents
// as it happens, but not necessarily valid UTF-8 ones), which JSON would
// have to base64 (a third larger, and slower both ways), and gob writes a
// type description in every standalone value and goes through reflection.
// Here a record costs at most ~40 bytes beyond its two documents, which
// are copied as they are, and decoding is a few slice operations.
//
// Layout, version 1:
//
//	byte     version (1)
//	byte     flags: 1 = CreatedAt is set, 2 = ExpiresAt is set
//	varint   CreatedAt seconds since 1970, uvarint nanoseconds  (if flag 1)
//	varint   ExpiresAt seconds since 1970, uvarint nanoseconds  (if flag 2)
//	uvarint  len(Response), then Response
//	uvarint  len(Input), then Input
//
// Nothing may follow. A zero time.Time stays zero (no flag); other times
// come back as the same instant in UTC, to the nanosecond.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Version is the layout written by Append.
const Version = 1

const (
	flagCreated = 1 << iota
	flagExpires
)

// ErrCorrupt is wrapped by every Decode error.
var ErrCorrupt = errors.New("corrupt stored response record")

// Size is an upper bound of len(Append(nil, r)).
func Size(r domain.StoredResponse) int {
	return 2 + 2*(binary.MaxVarintLen64+binary.MaxVarintLen32) +
		2*binary.MaxVarintLen64 + len(r.Response) + len(r.Input)
}

// Append appends r's record (everything but its ID) to dst.
func Append(dst []byte, r domain.StoredResponse) []byte {
	if dst == nil {
		dst = make([]byte, 0, Size(r))
	}
	var flags byte
	if !r.CreatedAt.IsZero() {
		flags |= flagCreated
	}
	if !r.ExpiresAt.IsZero() {
		flags |= flagExpires
	}
	dst = append(dst, Version, flags)
	if flags&flagCreated != 0 {
		dst = appendTime(dst, r.CreatedAt)
	}
	if flags&flagExpires != 0 {
		dst = appendTime(dst, r.ExpiresAt)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Response)))
	dst = append(dst, r.Response...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Input)))
	dst = append(dst, r.Input...)
	return dst
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// Decode reads a record written by Append, for the response id. Response
// and Input are slices of b (capped, so appending to one never writes
// over the other): a caller whose b is not its own to keep copies b first.
func Decode(id string, b []byte) (domain.StoredResponse, error) {
	r := domain.StoredResponse{ID: id}
	if len(b) < 2 {
		return r, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != Version {
		return r, fmt.Errorf("%w: layout version %d, this build reads %d", ErrCorrupt, b[0], Version)
	}
	flags := b[1]
	if flags&^(flagCreated|flagExpires) != 0 {
		return r, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	d := decoder{b: b, off: 2}
	if flags&flagCreated != 0 {
		r.CreatedAt = d.time()
	}
	if flags&flagExpires != 0 {
		r.ExpiresAt = d.time()
	}
	r.Response = d.bytes()
	r.Input = d.bytes()
	if d.err == nil && d.off != len(b) {
		d.err = fmt.Errorf("%d bytes after the input", len(b)-d.off)
	}
	if d.err != nil {
		return domain.StoredResponse{ID: id}, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return r, nil
}

// ExpiresAt reads only a record's expiry time (zero: never).
func ExpiresAt(b []byte) (time.Time, error) {
	if len(b) < 2 || b[0] != Version {
		return time.Time{}, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	d := decoder{b: b, off: 2}
	var t time.Time
	if b[1]&flagCreated != 0 {
		d.time()
	}
	if b[1]&flagExpires != 0 {
		t = d.time()
	}
	if d.err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return t, nil
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = fmt.Errorf("bad uvarint at offset %d", d.off)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err = fmt.Errorf("bad varint at offset %d", d.off)
		return time.Time{}
	}
	d.off += n
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.err = fmt.Errorf("nanoseconds %d out of range", nsec)
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > math.MaxInt || n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("length %d at offset %d runs past the end (%d bytes)", n, d.off, len(d.b))
		return nil
	}
	end := d.off + int(n)
	s := d.b[d.off:end:end]
	d.off = end
	return s
}
