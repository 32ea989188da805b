package dispatch

import (
	"hash/maphash"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
)

// seed keys this process's affinity table; keys never leave the process.
var seed = maphash.MakeSeed()

// textKeyPrefix is how much of a raw prompt names its conversation: an
// editor's completions of one file share their beginning.
const textKeyPrefix = 512

// chatKey names req's conversation for a pool's affinity: the client's
// session when it named one, else its leading messages (everything up to
// and including the first user message), which stay the same as the
// conversation grows, with the user and the model the client asked for.
func chatKey(req *domain.ChatRequest) pool.Key {
	var h maphash.Hash
	h.SetSeed(seed)
	if req.Session != "" {
		h.WriteString("session\x00")
		h.WriteString(req.Session)
		return pool.Key{Hash: h.Sum64(), Set: true}
	}
	h.WriteString(req.Model)
	h.WriteByte(0)
	h.WriteString(req.User)
	for _, m := range req.Messages {
		h.WriteByte(0)
		h.WriteString(m.Role)
		h.WriteByte(0)
		h.WriteString(m.Content)
		for _, img := range m.Images {
			h.WriteByte(0)
			h.WriteString(img.URL)
		}
		if m.Role == domain.RoleUser {
			return pool.Key{Hash: h.Sum64(), Set: true}
		}
	}
	return pool.Key{} // no user message: nothing to continue
}

// textKey names a text completion's conversation: the session, else the
// beginning of its first prompt.
func textKey(req *domain.TextRequest) pool.Key {
	var h maphash.Hash
	h.SetSeed(seed)
	if req.Session != "" {
		h.WriteString("session\x00")
		h.WriteString(req.Session)
		return pool.Key{Hash: h.Sum64(), Set: true}
	}
	if len(req.Prompts) == 0 || (req.Prompts[0].Text == "" && len(req.Prompts[0].Tokens) == 0) {
		return pool.Key{}
	}
	h.WriteString(req.Model)
	h.WriteByte(0)
	h.WriteString(req.User)
	h.WriteByte(0)
	p := req.Prompts[0]
	if p.Text != "" {
		h.WriteString(p.Text[:min(len(p.Text), textKeyPrefix)])
	} else {
		for _, t := range p.Tokens[:min(len(p.Tokens), textKeyPrefix/4)] {
			h.WriteByte(byte(t))
			h.WriteByte(byte(t >> 8))
			h.WriteByte(byte(t >> 16))
		}
	}
	return pool.Key{Hash: h.Sum64(), Set: true}
}
