package httpapi

import (
	"regexp"
	"strconv"
	"strings"
)

// dataURL matches a data: URL inside a JSON string: its media type (the
// slash possibly escaped), its parameters, and its data up to the closing
// quote.
var dataURL = regexp.MustCompile(`"data:([a-zA-Z0-9.+-]+(?:/|\\/)[a-zA-Z0-9.+-]+)?((?:;[^,"\\]*)*),((?:[^"\\]|\\.)*)"`)

// redactImages replaces the data of every data: URL in a JSON body with its
// media type and size, for the debug log: images are large, and may be
// personal.
func redactImages(body []byte) []byte {
	if !strings.Contains(string(body), `"data:`) {
		return body
	}
	return dataURL.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := dataURL.FindSubmatch(m)
		media := strings.ReplaceAll(string(sub[1]), `\/`, "/")
		if media == "" {
			media = "text/plain"
		}
		return []byte(`"data:` + media + ` (` + strconv.Itoa(len(sub[3])) + ` bytes of data, not logged)"`)
	})
}
