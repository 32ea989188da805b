package tokenizer

import "fmt"

// Decode returns the text of token ids as encoded for model (see
// EncodingFor): the bytes of each token, concatenated, as tiktoken's decode
// gives them. Clients such as LangChain's OpenAIEmbeddings send embedding
// inputs and legacy completion prompts as token ids, which a local backend
// cannot take.
//
// Special tokens decode to their text, "<|endoftext|>" and the like. An id
// that is neither in the encoding's vocabulary nor one of its special tokens
// (negative, too large, or in a gap between ranks) is an error, a
// *DecodeError naming the first such id.
//
// Tokens are byte sequences, not characters: ids that cut a multibyte
// character (a truncated list, say) decode to text that is not valid UTF-8.
// Decode returns those bytes as they are; a JSON encoder replaces invalid
// UTF-8 with U+FFFD.
//
// Decoding an empty list returns "" without loading the encoding; otherwise
// the encoding is loaded on first use, as for counting.
func (c *Counter) Decode(model string, ids []int) (string, error) {
	if len(ids) == 0 {
		return "", nil
	}
	return loaded(EncodingFor(model)).decode(ids)
}

// DecodeError reports a token id that the encoding does not define.
type DecodeError struct {
	Index    int    // position of the id in the list
	ID       int    // the id
	Encoding string // name of the encoding, as EncodingFor returns it
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("token %d (id %d) is not in the %s vocabulary", e.Index, e.ID, e.Encoding)
}
