package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// What the shared store (Redis) holds is keyed and sealed per tenant, because whoever can read
// or write that store is not necessarily allowed to see a tenant's intelligence:
//
//   - The key of an entry is SHA-256 over the format version, the MISP base URL, the API key
//     and the lookup. No API key, JWT or MISP URL appears in Redis, and an answer cached for
//     one MISP and API key is found only by the same MISP and key.
//   - The value is AES-256-GCM sealed with a key derived from the API key (HMAC-SHA256 over
//     the MISP base URL) and authenticated together with its Redis key. Another Redis client,
//     or a relay serving other tenants, can neither read a tenant's answers nor plant one:
//     a value moved to another key, truncated, or written by anyone without the API key does
//     not open, and reads as a miss.
//
// The value is
//
//	envelope = byte(entryVersion) nonce(12) AES-256-GCM(plaintext, additional data: the Redis key)
//	plaintext = uvarint(fetched at, Unix milliseconds) payload
//
// where the payload is the events encoding of codec.go. The fetch time lets every instance
// stop using an answer CACHE_TTL after MISP gave it, however late it read the entry.

// entryVersion is the first byte of every value and part of every key: changing the encoding
// means bumping it, and relays of different versions then never read each other's entries.
const entryVersion = 4

// keyPrefix starts every key the relay writes, so that operators can tell them apart in a
// shared Redis (and count or delete them with SCAN misp-relay:*).
const keyPrefix = "misp-relay:v4:" // v and entryVersion

const (
	nonceSize = 12
	tagSize   = 16
	// sealOverhead is what the envelope adds to the plaintext.
	sealOverhead = 1 + nonceSize + tagSize
)

var errUnsealed = errors.New("cache: shared cache entry does not open")

// sharedKey is the Redis key of one lookup of kind ("search", "warninglist") by the tenant
// (base, apiKey): misp-relay:v4:<kind>:<SHA-256, hex>. Every field is length-prefixed, so that
// no two different lookups hash the same input; the kind is also in clear, so that operators
// can count entries by kind (SCAN misp-relay:v4:search:*).
func sharedKey(base, apiKey, kind string, parts ...string) string {
	h := sha256.New()
	field := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	field("misp-relay shared cache " + strconv.Itoa(entryVersion))
	field(base)
	field(apiKey)
	field(kind)
	for _, p := range parts {
		field(p)
	}
	return keyPrefix + kind + ":" + hex.EncodeToString(h.Sum(nil))
}

// newSealer returns the AEAD that seals the tenant's entries.
func newSealer(base, apiKey string) cipher.AEAD {
	mac := hmac.New(sha256.New, []byte(apiKey))
	mac.Write([]byte("misp-relay shared cache seal " + strconv.Itoa(entryVersion) + "\x00" + base))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key is always a valid AES key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // AES has the block size GCM needs
	}
	return aead
}

// seal returns the value stored under key for payload, fetched (from MISP) at fetched.
func seal(aead cipher.AEAD, key string, fetched time.Time, payload []byte) []byte {
	plain := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(payload)), uint64(max(fetched.UnixMilli(), 0)))
	plain = append(plain, payload...)
	out := make([]byte, 1+nonceSize, sealOverhead+len(plain))
	out[0] = entryVersion
	if _, err := rand.Read(out[1:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return aead.Seal(out, out[1:1+nonceSize], plain, []byte(key))
}

// unseal opens a value read under key. It decrypts in place: the payload it returns shares
// value's memory.
func unseal(aead cipher.AEAD, key string, value []byte) (fetched time.Time, payload []byte, err error) {
	if len(value) < sealOverhead || value[0] != entryVersion {
		return time.Time{}, nil, errUnsealed
	}
	nonce, box := value[1:1+nonceSize], value[1+nonceSize:]
	plain, err := aead.Open(box[:0], nonce, box, []byte(key))
	if err != nil {
		return time.Time{}, nil, errUnsealed
	}
	ms, n := binary.Uvarint(plain)
	if n <= 0 || ms > 1<<62 {
		return time.Time{}, nil, errUnsealed
	}
	return time.UnixMilli(int64(ms)), plain[n:], nil
}
