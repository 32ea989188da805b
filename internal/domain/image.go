package domain

import (
	"context"
	"sync"
)

// Image is an image the client sent, by the URL it gave: a data: URL, or an
// http(s) URL. A backend that needs the image's bytes (Ollama) loads them
// through Load, which keeps the result: the image is fetched once per
// request, whatever the number of choices, retries and fallbacks.
type Image struct {
	URL string

	mu     sync.Mutex
	loaded bool
	data   string
}

// NewImage returns the image at url.
func NewImage(url string) *Image { return &Image{URL: url} }

// Load returns the image as load produced it (standard base64), calling
// load only the first time it succeeds. Failures are not kept: they end
// the request.
func (im *Image) Load(ctx context.Context, load func(ctx context.Context, url string) (string, error)) (string, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.loaded {
		return im.data, nil
	}
	data, err := load(ctx, im.URL)
	if err != nil {
		return "", err
	}
	im.data, im.loaded = data, true
	return data, nil
}
