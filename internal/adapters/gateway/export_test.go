package gateway

// EmbedBody is embedBody, for the external tests.
var EmbedBody = embedBody
