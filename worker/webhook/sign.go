package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iacc/iacc/store"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretKey is the HMAC key of a "whsec_<base64>" secret.
func secretKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, store.WebhookSecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret lacks the whsec_ prefix")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret is not valid base64")
	}
	return key, nil
}

// Sign is the webhook-signature header value of a message: "v1,<base64
// HMAC-SHA256 of msgID.timestamp.body>" for each secret, space-separated
// (Standard Webhooks lets a receiver accept any of them, which is how a
// secret rotation overlaps).
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("sign webhook: no secret")
	}
	prefix := msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "."
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", fmt.Errorf("sign webhook %s: %w", msgID, err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(prefix))
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
