package domain

import (
	"errors"
	"time"
)

// ErrResponseNotFound means no stored response has that id: it was never
// stored (store: false), it expired, or it was deleted.
var ErrResponseNotFound = errors.New("response not found")

// StoredResponse is a Responses API answer kept so that a later request
// can continue it (previous_response_id) and a client can read it back.
// Response and Input are documents the inbound adapter wrote (the response
// object as the client received it, and every input item it answered,
// earlier turns included); they are opaque here.
type StoredResponse struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time // the store drops it then; zero: never
	Response  []byte
	Input     []byte
}

// Size is what the response takes in a store.
func (r StoredResponse) Size() int { return len(r.ID) + len(r.Response) + len(r.Input) }
