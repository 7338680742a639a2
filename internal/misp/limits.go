package misp

import (
	"fmt"
	"io"
)

// Defaults of the byte caps of Config.
const (
	// DefaultMaxAnswerBytes bounds the decompressed bytes one lookup reads from MISP, all
	// its pages together: real answers are a few KB per attribute, so 32 MiB is thousands
	// of attributes, while a hostile MISP cannot make one lookup hold more.
	DefaultMaxAnswerBytes = 32 << 20
	// DefaultMaxAttributeBytes bounds one attribute of a restSearch answer (its event
	// context and tags included), and any other single JSON value in it: the decoder holds
	// a whole value in memory before it can decode it.
	DefaultMaxAttributeBytes = 1 << 20
)

// sizeError is a MISP answer over one of the caps. The relay stops reading there.
type sizeError struct {
	what    string // what was too large
	setting string // the relay setting that raises the cap
	limit   int64
}

func (e *sizeError) Error() string {
	return fmt.Sprintf("%s is larger than the relay reads (%s; set %s to raise it)", e.what, byteSize(e.limit), e.setting)
}

// byteSize renders n for people: 32 MiB, 1 MiB, 512 KiB, 100 bytes.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// capReader reads a response body (already decompressed: Go's transport undoes the gzip
// it asked for) and fails once the lookup has read more than its budget, or once more than
// maxValue bytes were read past what the JSON decoder has consumed, i.e. while the decoder
// is still buffering one value (a 256 MiB string, say). Both errors stop the read at once:
// the decoder's buffer never grows much past maxValue, and the rest of the answer is never
// inflated.
type capReader struct {
	r io.Reader
	// budget is the lookup's remaining answer bytes, shared by its pages.
	budget *int64
	limit  int64 // the budget's initial value, for the message
	// read counts the bytes read from r; consumed, once set, says how many of them the
	// decoder has consumed (it reads ahead of what it has decoded).
	read     int64
	consumed func() int64
	maxValue int64
}

func answerTooLarge(limit int64) *sizeError {
	return &sizeError{"MISP's answer", "MISP_MAX_ANSWER_BYTES", limit}
}

func attributeTooLarge(limit int64) *sizeError {
	return &sizeError{"an attribute in MISP's answer", "MISP_MAX_ATTRIBUTE_BYTES", limit}
}

func (c *capReader) Read(p []byte) (int, error) {
	if *c.budget < 0 {
		return 0, answerTooLarge(c.limit)
	}
	pending := int64(0)
	if c.consumed != nil {
		pending = c.read - c.consumed()
		if pending > c.maxValue {
			return 0, attributeTooLarge(c.maxValue)
		}
	}
	// Never read far past either cap (one byte past the budget tells a too-large answer
	// from one that ends exactly there), so what is buffered stays near them.
	room := min(*c.budget+1, c.maxValue-pending+1)
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	*c.budget -= int64(n)
	return n, err
}
