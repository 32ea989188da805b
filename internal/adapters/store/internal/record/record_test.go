package record

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func TestRoundTrip(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []domain.StoredResponse{
		{},
		{Response: []byte(`{"id":"resp_1"}`)},
		{CreatedAt: time.Unix(1_700_000_000, 123_456_789), Response: binary, Input: []byte("[]")},
		{CreatedAt: time.Unix(1, 0), ExpiresAt: time.Unix(1<<40, 999_999_999), Input: binary},
		{ExpiresAt: time.Unix(-5, 7)},
		{CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, // not zero, before 1970
	}
	for i, in := range cases {
		in.ID = "resp_x"
		b := Append(nil, in)
		if len(b) > Size(in) {
			t.Errorf("case %d: %d bytes, Size says at most %d", i, len(b), Size(in))
		}
		out, err := Decode("resp_x", b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if out.ID != in.ID || !out.CreatedAt.Equal(in.CreatedAt) || !out.ExpiresAt.Equal(in.ExpiresAt) ||
			out.CreatedAt.IsZero() != in.CreatedAt.IsZero() || out.ExpiresAt.IsZero() != in.ExpiresAt.IsZero() ||
			!bytes.Equal(out.Response, in.Response) || !bytes.Equal(out.Input, in.Input) {
			t.Errorf("case %d: got %+v, want %+v", i, out, in)
		}
		exp, err := ExpiresAt(b)
		if err != nil || !exp.Equal(in.ExpiresAt) {
			t.Errorf("case %d: ExpiresAt = %v, %v; want %v", i, exp, err, in.ExpiresAt)
		}
		// Appending to the decoded Response must not overwrite Input.
		if len(out.Input) > 0 {
			before := bytes.Clone(out.Input)
			_ = append(out.Response, 0xEE)
			if !bytes.Equal(out.Input, before) {
				t.Errorf("case %d: append to Response wrote over Input", i)
			}
		}
	}
}

func TestDecodeRejectsCorruptRecords(t *testing.T) {
	good := Append(nil, domain.StoredResponse{CreatedAt: time.Unix(10, 0), Response: []byte("abc"), Input: []byte("de")})
	bad := map[string][]byte{
		"empty":           nil,
		"one byte":        {Version},
		"version 2":       append([]byte{2}, good[1:]...),
		"unknown flag":    append([]byte{Version, 0x80}, good[2:]...),
		"truncated":       good[:len(good)-1],
		"trailing byte":   append(bytes.Clone(good), 0),
		"huge length":     {Version, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad nanoseconds": {Version, flagCreated, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0},
	}
	for name, b := range bad {
		if _, err := Decode("x", b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, domain.StoredResponse{CreatedAt: time.Unix(10, 5), ExpiresAt: time.Unix(20, 0), Response: []byte("r"), Input: []byte("i")}))
	f.Add([]byte{Version, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode("id", b)
		if err != nil {
			return
		}
		// Varints may come over-long, so compare decoded values.
		again, err := Decode("id", Append(nil, r))
		if err != nil || !again.CreatedAt.Equal(r.CreatedAt) || !again.ExpiresAt.Equal(r.ExpiresAt) ||
			!bytes.Equal(again.Response, r.Response) || !bytes.Equal(again.Input, r.Input) {
			t.Fatalf("decode, encode, decode changed the record: %+v, %v\nwas %+v", again, err, r)
		}
	})
}
