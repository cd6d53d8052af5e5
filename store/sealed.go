package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Secrets that iacc must read back (webhook signing secrets) are kept
// sealed in MySQL: AES-256-GCM under a key of the Keyring, written as
//
//	sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// The column's name is the additional data, so a value copied into another
// kind of column does not open. A value without the prefix is a plaintext
// one written before sealing existed: it is read as it is, and
// `iacc webhooks reseal` seals it.

const sealedPrefix = "sealed:v1:"

// ErrNoKey reports a sealed value whose key the keyring does not hold.
var ErrNoKey = errors.New("sealed with a key that is not configured")

// Keyring holds the keys secrets are sealed with: the first seals, every
// one opens (so a new key can be put first while values sealed with the
// old ones are resealed).
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
}

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// ParseKeyring reads "id:base64key[,id:base64key...]": ids of letters,
// digits, '-' and '_', keys of KeySize bytes in standard or URL base64
// (padded or not). The first key seals.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{keys: map[string]cipher.AEAD{}}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		id, enc, ok := strings.Cut(item, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("key %q: want id:base64key", redactKey(item))
		}
		if strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" || len(id) > 32 {
			return nil, fmt.Errorf("key id %q: use up to 32 letters, digits, '-' or '_'", id)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("key id %q appears twice", id)
		}
		raw, err := decodeKey(enc)
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("key %q: want %d bytes in base64 (e.g. `openssl rand -base64 32`)", id, KeySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		k.keys[id] = aead
		if k.current == "" {
			k.current = id
		}
	}
	return k, nil
}

// NewKeySpec returns a keyring spec of one fresh random key named id.
func NewKeySpec(id string) (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate secret key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// redactKey keeps the id of an "id:key" item for an error message.
func redactKey(item string) string {
	if id, _, ok := strings.Cut(item, ":"); ok {
		return id + ":…"
	}
	if len(item) > 4 {
		return item[:4] + "…"
	}
	return item
}

// Current is the id of the key that seals.
func (k *Keyring) Current() string { return k.current }

// Seal encrypts plain for the column named column.
func (k *Keyring) Seal(plain, column string) (string, error) {
	aead := k.keys[k.current]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("seal %s: %w", column, err)
	}
	buf = aead.Seal(buf, buf, []byte(plain), []byte(column))
	return sealedPrefix + k.current + ":" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts a value of the column named column. A value that is not
// sealed is returned as it is.
func (k *Keyring) Open(stored, column string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("open %s: malformed sealed value", column)
	}
	var aead cipher.AEAD
	if k != nil {
		aead = k.keys[id]
	}
	if aead == nil {
		return "", fmt.Errorf("open %s: key %q: %w (IACC_SECRET_KEYS)", column, id, ErrNoKey)
	}
	buf, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(buf) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("open %s: malformed sealed value", column)
	}
	plain, err := aead.Open(nil, buf[:aead.NonceSize()], buf[aead.NonceSize():], []byte(column))
	if err != nil {
		return "", fmt.Errorf("open %s with key %q: %w", column, id, err)
	}
	return string(plain), nil
}

// Fresh reports whether stored is sealed with the current key.
func (k *Keyring) Fresh(stored string) bool {
	return strings.HasPrefix(stored, sealedPrefix+k.current+":")
}

// keyring is the process's keyring (UseKeyring); nil until it is set, when
// secrets are written and read in plaintext.
var keyring atomic.Pointer[Keyring]

// UseKeyring makes k seal the secrets this process writes and open those
// it reads. Every iacc process sets it at start (IACC_SECRET_KEYS, or the
// local development key).
func UseKeyring(k *Keyring) { keyring.Store(k) }

// sealColumn seals plain for column with the process's keyring, if any.
func sealColumn(plain, column string) (string, error) {
	k := keyring.Load()
	if k == nil || plain == "" {
		return plain, nil
	}
	return k.Seal(plain, column)
}

// openColumn opens a stored value of column with the process's keyring.
func openColumn(stored, column string) (string, error) {
	return keyring.Load().Open(stored, column)
}

// ResealWebhookSecrets seals, with the keyring's current key, every webhook
// signing secret stored in plaintext or under an older key, batch endpoints
// at a time, and returns how many endpoints it changed. An endpoint whose
// secrets change meanwhile (a rotation) keeps the new ones. Endpoints whose
// secrets no configured key opens are left as they are and reported in the
// error, after the others are done. It needs a keyring (UseKeyring).
func ResealWebhookSecrets(ctx context.Context, db *DB, batch int) (int, error) {
	k := keyring.Load()
	if k == nil {
		return 0, errors.New("reseal webhook secrets: no secret keys configured")
	}
	if batch <= 0 {
		batch = 500
	}
	type row struct {
		id     int64
		secret string
		prev   sql.NullString
	}
	scan := func(s interface{ Scan(...any) error }) (row, error) {
		var r row
		return r, s.Scan(&r.id, &r.secret, &r.prev)
	}
	stale := func(stored string) bool { return stored != "" && !k.Fresh(stored) }
	changed, unopened := 0, 0
	var firstErr error
	for after := int64(0); ; {
		rows, err := queryAll(ctx, db, `SELECT id, secret, previous_secret FROM webhook_endpoints WHERE id > ? ORDER BY id LIMIT ?`,
			[]any{after, batch}, scan)
		if err != nil {
			return changed, fmt.Errorf("reseal webhook secrets: list endpoints: %w", err)
		}
		if len(rows) == 0 {
			if unopened > 0 {
				return changed, fmt.Errorf("reseal webhook secrets: %d endpoint(s) left as they are, first %w; rotate their secrets", unopened, firstErr)
			}
			return changed, nil
		}
		after = rows[len(rows)-1].id
		for _, r := range rows {
			if !stale(r.secret) && !stale(r.prev.String) {
				continue
			}
			secret, err := reseal(k, r.secret)
			prev := r.prev
			if err == nil {
				prev.String, err = reseal(k, r.prev.String)
			}
			if err != nil {
				if unopened++; firstErr == nil {
					firstErr = fmt.Errorf("endpoint %d: %w", r.id, err)
				}
				continue
			}
			res, err := db.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = ?, previous_secret = ?
				WHERE id = ? AND secret = ? AND previous_secret <=> ?`, secret, prev, r.id, r.secret, r.prev)
			if err != nil {
				return changed, fmt.Errorf("reseal webhook endpoint %d: %w", r.id, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				changed++
			}
		}
	}
}

// reseal opens a stored secret (with any key of k, or as plaintext) and
// seals it with k's current key; "" (no secret) stays "".
func reseal(k *Keyring, stored string) (string, error) {
	if stored == "" {
		return "", nil
	}
	plain, err := k.Open(stored, webhookSecretColumn)
	if err != nil {
		return "", err
	}
	return k.Seal(plain, webhookSecretColumn)
}
