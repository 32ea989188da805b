package ollama

// The body writers, for the tests of package ollama_test: what Chat and
// Complete send must be what encoding/json writes of the bodies Translate
// and TranslateText return.
var (
	EncodeChat     = encodeChat
	EncodeGenerate = encodeGenerate
)
