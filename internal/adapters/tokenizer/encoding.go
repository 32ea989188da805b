package tokenizer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	// OpenAI's rank files (o200k_base.tiktoken, cl100k_base.tiktoken, as
	// published by OpenAI; their SHA-256 is checked by the tests), embedded.
	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// encoding is a loaded byte-pair encoding.
type encoding struct {
	name  string
	ranks map[string]uint32 // token bytes to rank, which is the token id
	next  func(s string, i int) int

	// For decoding: the bytes of the token of rank r are
	// arena[offsets[r]:offsets[r+1]]. arena is the string the keys of ranks
	// are slices of, so the reverse lookup costs only offsets (4 bytes a
	// token).
	arena   string
	offsets []uint32
	special map[int]string // special token id to its text
}

// specialTokens are the special tokens tiktoken defines for each encoding,
// with their ids, as in openai/tiktoken's tiktoken_ext/openai_public.py
// (cl100k_base() and o200k_base(); checked at release 0.14.0, commit
// 4e71bbe0c078468e00fefbf94b39849389f346e5). They are not in the rank files:
// their ids lie past the ranks or in gaps between them.
var specialTokens = map[string]map[int]string{
	Cl100kBase: {
		100257: "<|endoftext|>",
		100258: "<|fim_prefix|>",
		100259: "<|fim_middle|>",
		100260: "<|fim_suffix|>",
		100276: "<|endofprompt|>",
	},
	O200kBase: {
		199999: "<|endoftext|>",
		200018: "<|endofprompt|>",
	},
}

// loadEncoding parses the embedded rank file of encoding name. The file has
// one "base64(token) rank" line per token, in rank order.
func loadEncoding(name string, next func(string, int) int) (*encoding, error) {
	data, err := assets.Assets.ReadFile(name + ".tiktoken")
	if err != nil {
		return nil, err
	}
	lines := bytes.Count(data, []byte{'\n'})
	arena := make([]byte, 0, len(data)*3/4)
	// offsets[r] and offsets[r+1] bound the bytes of rank r in arena.
	offsets := make([]uint32, 1, lines+1)
	for rank := 0; len(data) > 0; rank++ {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		data = rest
		token, id, ok := bytes.Cut(line, []byte{' '})
		if !ok || string(id) != strconv.Itoa(rank) {
			return nil, fmt.Errorf("%s: line %d: want rank %d", name, rank+1, rank)
		}
		if arena, err = base64.StdEncoding.AppendDecode(arena, token); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, rank+1, err)
		}
		offsets = append(offsets, uint32(len(arena)))
	}
	if uint64(len(arena)) > math.MaxUint32 {
		return nil, fmt.Errorf("%s: over 4 GiB of tokens", name) // offsets wrapped
	}
	// One string for all tokens; the map keys are slices of it.
	all := string(arena)
	n := len(offsets) - 1
	ranks := make(map[string]uint32, n)
	for rank := range n {
		ranks[all[offsets[rank]:offsets[rank+1]]] = uint32(rank)
	}
	if len(ranks) != n {
		return nil, fmt.Errorf("%s: %d ranks for %d distinct tokens", name, n, len(ranks))
	}
	special := specialTokens[name]
	for id, text := range special {
		if id < n {
			return nil, fmt.Errorf("%s: special token %s has id %d, a rank", name, text, id)
		}
	}
	return &encoding{name: name, ranks: ranks, next: next, arena: all, offsets: offsets, special: special}, nil
}

// count returns the number of tokens of text.
func (e *encoding) count(text string) int {
	n := 0
	e.tokenize(text, func(piece string, bounds []int) {
		if bounds == nil {
			n++
		} else {
			n += len(bounds) - 1
		}
	})
	return n
}

// encode returns the token ids of text.
func (e *encoding) encode(text string) []uint32 {
	var ids []uint32
	e.tokenize(text, func(piece string, bounds []int) {
		if bounds == nil {
			ids = append(ids, e.ranks[piece])
			return
		}
		for i := range len(bounds) - 1 {
			ids = append(ids, e.ranks[piece[bounds[i]:bounds[i+1]]])
		}
	})
	return ids
}

// decode returns the bytes of the tokens ids, concatenated, or a
// *DecodeError for the first id that is neither a rank nor a special token.
func (e *encoding) decode(ids []int) (string, error) {
	size := 0
	for i, id := range ids {
		t, ok := e.token(id)
		if !ok {
			return "", &DecodeError{Index: i, ID: id, Encoding: e.name}
		}
		size += len(t)
	}
	var b strings.Builder
	b.Grow(size)
	for _, id := range ids {
		t, _ := e.token(id)
		b.WriteString(t)
	}
	return b.String(), nil
}

// token returns the bytes of token id: a rank's or a special token's text.
func (e *encoding) token(id int) (string, bool) {
	if id >= 0 && id < len(e.offsets)-1 {
		return e.arena[e.offsets[id]:e.offsets[id+1]], true
	}
	t, ok := e.special[id]
	return t, ok
}

// tokenize cuts text into pieces and calls yield for each with the byte
// offsets of its tokens' boundaries, or nil bounds when the whole piece is a
// token. Invalid UTF-8 is first replaced with U+FFFD, as text decoded from
// JSON would be.
func (e *encoding) tokenize(text string, yield func(piece string, bounds []int)) {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	var scratch []int
	for i := 0; i < len(text); {
		end := e.next(text, i)
		piece := text[i:end]
		i = end
		if _, ok := e.ranks[piece]; ok {
			yield(piece, nil)
			continue
		}
		scratch = e.merge(piece, scratch[:0])
		yield(piece, scratch)
	}
}

// heapMergeFrom is the piece length, in bytes, from which merge switches from
// a quadratic scan to a heap, so that a long piece (a run of thousands of
// spaces, say) costs O(n log n).
const heapMergeFrom = 128

const noRank = math.MaxUint32

// merge appends to bounds the byte offsets of the boundaries of the tokens of
// piece, 0 first and len(piece) last: it merges the adjacent pair of parts
// with the lowest rank, leftmost first, until no pair is a token, as
// tiktoken's byte_pair_merge does.
func (e *encoding) merge(piece string, bounds []int) []int {
	if len(piece) >= heapMergeFrom {
		return e.mergeHeap(piece, bounds)
	}
	return e.mergeScan(piece, bounds)
}

// rank returns the rank of piece[start:end], or noRank.
func (e *encoding) rank(piece string, start, end int) uint32 {
	if r, ok := e.ranks[piece[start:end]]; ok {
		return r
	}
	return noRank
}

// mergeScan finds each merge with a linear scan: O(n²) for a piece of n
// bytes, and fastest for short pieces.
func (e *encoding) mergeScan(piece string, bounds []int) []int {
	var buf [heapMergeFrom + 1]scanPart // merge calls mergeScan for shorter pieces
	var parts []scanPart
	if len(piece) < len(buf) {
		parts = buf[:len(piece)+1]
	} else {
		parts = make([]scanPart, len(piece)+1)
	}
	for i := range parts {
		parts[i] = scanPart{i, noRank}
		if i+2 <= len(piece) {
			parts[i].rank = e.rank(piece, i, i+2)
		}
	}
	// rankAfter is the rank of part i merged with the next two parts' bytes,
	// that is, once parts i and i+1 are merged.
	rankAfter := func(i int) uint32 {
		if i+3 < len(parts) {
			return e.rank(piece, parts[i].start, parts[i+3].start)
		}
		return noRank
	}
	for {
		best, at := uint32(noRank), -1
		for i := range len(parts) - 1 {
			if parts[i].rank < best {
				best, at = parts[i].rank, i
			}
		}
		if at < 0 {
			break
		}
		if at > 0 {
			parts[at-1].rank = rankAfter(at - 1)
		}
		parts[at].rank = rankAfter(at)
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	for _, p := range parts {
		bounds = append(bounds, p.start)
	}
	return bounds
}

type scanPart struct {
	start int
	rank  uint32 // rank of merging this part with the next
}

// mergeHeap finds each merge with a min-heap of (rank, offset) candidates
// over a linked list of parts: O(n log n), with the same merges as mergeScan.
func (e *encoding) mergeHeap(piece string, bounds []int) []int {
	n := len(piece)
	next := make([]int32, n+1) // offset of the next part's start; -1 after the end
	prev := make([]int32, n+1)
	rank := make([]uint32, n+1) // rank of merging the part at this offset with the next
	for i := range n + 1 {
		next[i], prev[i], rank[i] = int32(i+1), int32(i-1), noRank
	}
	next[n] = -1
	// rankAt is the rank of merging the part at offset i with the next one.
	rankAt := func(i int32) uint32 {
		j := next[i]
		if j < 0 || next[j] < 0 {
			return noRank
		}
		return e.rank(piece, int(i), int(next[j]))
	}
	h := make(candidates, 0, n)
	for i := range int32(n) {
		if rank[i] = rankAt(i); rank[i] != noRank {
			h = append(h, candidate{rank[i], i})
		}
	}
	h.init()
	for len(h) > 0 {
		top := h.pop()
		i := top.offset
		if rank[i] != top.rank {
			continue // stale: this part merged or was merged away since
		}
		// Merge the part at i with the next one, which disappears.
		j := next[i]
		rank[j] = noRank
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		for _, k := range [2]int32{i, prev[i]} {
			if k < 0 {
				continue
			}
			if rank[k] = rankAt(k); rank[k] != noRank {
				h.push(candidate{rank[k], k})
			}
		}
	}
	for i := int32(0); i >= 0; i = next[i] {
		bounds = append(bounds, int(i))
	}
	return bounds
}

// candidate is a possible merge of the part at offset with the next one.
type candidate struct {
	rank   uint32
	offset int32
}

// candidates is a binary min-heap ordered by rank, then offset, so that
// among equal ranks the leftmost pair merges first.
type candidates []candidate

func (h candidates) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].offset < h[b].offset
}

func (h candidates) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	h.up(len(*h) - 1)
}

func (h *candidates) pop() candidate {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
	return top
}

func (h candidates) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (h candidates) down(i int) {
	for {
		child := 2*i + 1
		if child >= len(h) {
			return
		}
		if right := child + 1; right < len(h) && h.less(right, child) {
			child = right
		}
		if !h.less(child, i) {
			return
		}
		h[i], h[child] = h[child], h[i]
		i = child
	}
}
