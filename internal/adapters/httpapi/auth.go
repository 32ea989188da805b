package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
)

// requireKey admits requests bearing one of keys. Keys are compared as
// SHA-256 digests in constant time, every key every time, so neither the
// match nor a key's length shows in the timing. No key is ever logged.
func requireKey(keys []string) gin.HandlerFunc {
	digests := make([][32]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(c *gin.Context) {
		token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || token == "" {
			writeError(c, apiError{Status: http.StatusUnauthorized, Body: openai.NewError(openai.TypeInvalidRequest,
				"You didn't provide an API key. Send it in the Authorization header: Authorization: Bearer YOUR_KEY.", "", "invalid_api_key")})
			c.Abort()
			return
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := 0
		for _, d := range digests {
			match |= subtle.ConstantTimeCompare(got[:], d[:])
		}
		if match != 1 {
			writeError(c, apiError{Status: http.StatusUnauthorized, Body: openai.NewError(openai.TypeInvalidRequest,
				"Incorrect API key provided.", "", "invalid_api_key")})
			c.Abort()
			return
		}
		c.Next()
	}
}
