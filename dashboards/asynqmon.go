package dashboards

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
)

// sharedRedis hands asynqmon the process's Redis client instead of a second pool.
type sharedRedis struct{ c redis.UniversalClient }

func (s sharedRedis) MakeRedisClient() any { return s.c }

// Queues returns the asynqmon UI and API rooted at rootPath. readOnly
// refuses every change (retry, delete, archive, pause); asynqmon applies it
// to the whole handler, so read-write and read-only are two mounts.
func Queues(rootPath string, rdb redis.UniversalClient, readOnly bool) http.Handler {
	return asynqmon.New(asynqmon.Options{
		RootPath:         rootPath,
		RedisConnOpt:     sharedRedis{rdb},
		ReadOnly:         readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(FormatPayload),
	})
}

// secretish names keys whose values are never shown.
var secretish = []string{"secret", "password", "token", "authorization", "api_key", "apikey", "credential", "private"}

// FormatPayload shows a task payload as indented JSON with the values of
// secret-looking keys replaced by "[redacted]". A payload that is not JSON
// is shown as a byte count only (it could be anything).
func FormatPayload(_ string, payload []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "(" + strconv.Itoa(len(payload)) + " bytes, not JSON)"
	}
	out, err := json.MarshalIndent(redact(v), "", "  ")
	if err != nil {
		return "(unprintable payload)"
	}
	return string(out)
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			lk := strings.ToLower(k)
			hidden := false
			for _, s := range secretish {
				if strings.Contains(lk, s) {
					hidden = true
					break
				}
			}
			if hidden {
				t[k] = "[redacted]"
			} else {
				t[k] = redact(val)
			}
		}
	case []any:
		for i := range t {
			t[i] = redact(t[i])
		}
	}
	return v
}
