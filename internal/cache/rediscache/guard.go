package rediscache

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Bounds of what one reply may announce. go-redis allocates what a reply's header announces
// before it reads a byte of it: "*20000000" is a 300 MiB slice, "*9223372036854775807" a
// panic, "$300000000" a 300 MiB buffer. The relay's own replies are small: values up to the
// cache's largest entry (256 KiB), integers, OK, and a few short arrays and maps (HELLO,
// CLUSTER SLOTS).
const (
	maxReplyBulk  = 1 << 20 // bytes of one string
	maxReplyItems = 1 << 16 // elements of one array, set or push; pairs of one map
)

var errReplyTooLarge = errors.New("redis: a reply announces more than the relay reads")

// guardDialer wraps dial's connections in a replyGuard.
func guardDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &replyGuard{Conn: c}, nil
	}
}

// replyGuard reads the RESP stream a Redis sends (after TLS) as go-redis will, header by
// header, and fails the read that brings a header announcing more than maxReplyBulk bytes or
// maxReplyItems elements, before go-redis sees it: the connection then fails as a dead one
// would, and the lookup goes to MISP. It only scans: each header's type and length, skipping
// string payloads; it parses nothing else.
type replyGuard struct {
	net.Conn
	err    error
	skip   int64 // payload bytes (and their CRLF) still to pass
	inLine bool  // within a header line
	typ    byte  // the line's type
	n      int64 // the line's number so far
	neg    bool
	digits int
}

func (g *replyGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		if g.err = g.scan(p[:n]); g.err != nil {
			return 0, g.err
		}
	}
	return n, err
}

func (g *replyGuard) scan(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			k := int64(len(b))
			if g.skip < k {
				k = g.skip
			}
			g.skip -= k
			b = b[k:]
			continue
		}
		c := b[0]
		b = b[1:]
		if !g.inLine {
			g.inLine, g.typ, g.n, g.neg, g.digits = true, c, 0, false, 0
			continue
		}
		switch {
		case c == '\n':
			g.inLine = false
			if err := g.header(); err != nil {
				return err
			}
		case !counted(g.typ), c == '\r':
		case c == '-' && g.digits == 0:
			g.neg = true
		case c >= '0' && c <= '9':
			if g.digits++; g.digits > 18 {
				return fmt.Errorf("%w: a %q header of more than 18 digits", errReplyTooLarge, g.typ)
			}
			g.n = g.n*10 + int64(c-'0')
		default:
			return fmt.Errorf("%w: a %q header that is not a number", errReplyTooLarge, g.typ)
		}
	}
	return nil
}

// counted tells whether a line of type t carries a length or a count (RESP2 and RESP3).
func counted(t byte) bool {
	switch t {
	case '$', '=', '!', '*', '~', '>', '%', '|':
		return true
	}
	return false
}

// header checks a complete header line and, for a string, skips its payload.
func (g *replyGuard) header() error {
	if g.neg || !counted(g.typ) {
		return nil // -1 is a null; other lines carry no length
	}
	switch g.typ {
	case '$', '=', '!':
		if g.n > maxReplyBulk {
			return fmt.Errorf("%w: a string of %d bytes", errReplyTooLarge, g.n)
		}
		g.skip = g.n + 2
	default:
		if g.n > maxReplyItems {
			return fmt.Errorf("%w: %d elements", errReplyTooLarge, g.n)
		}
	}
	return nil
}
