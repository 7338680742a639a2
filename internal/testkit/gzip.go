package testkit

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// GzipBomb is a gzip body that inflates to head + n × chunk + tail. Gzip readers (Go's
// transport's included) read concatenated members as one stream, so the chunk is compressed
// once: a 1 MiB run of one byte is about 1 KB compressed, and n = 256 makes a 256 MiB answer
// of about 260 KB, as the attack harness sent.
func GzipBomb(tb testing.TB, head string, chunk []byte, n int, tail string) []byte {
	tb.Helper()
	member := func(p []byte) []byte {
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = zw.Write(p)
		if err := zw.Close(); err != nil {
			tb.Fatal(err)
		}
		return b.Bytes()
	}
	mid := member(chunk)
	var out bytes.Buffer
	out.Write(member([]byte(head)))
	for range n {
		out.Write(mid)
	}
	out.Write(member([]byte(tail)))
	return out.Bytes()
}
