package warninglist_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/warninglist"
)

func TestTranslatePCRE(t *testing.T) {
	tests := []struct {
		pcre    string
		want    string   // the RE2 pattern
		match   []string // values it must match
		noMatch []string
	}{
		{`/^(abuse|noc)\@.*$/i`, `(?i)^(abuse|noc)\@.*$`, []string{"NOC@example.org", "abuse@x"}, []string{"ceo@example.org"}},
		{`#^a/b$#`, `^a/b$`, []string{"a/b"}, []string{"a/bc"}},
		{`/^a\/b$/`, `^a/b$`, []string{"a/b"}, nil},
		{`{^x+$}`, `^x+$`, []string{"xx"}, []string{"xy"}},
		{`/^line$/m`, `(?m)^line$`, []string{"first\nline"}, nil},
		{`/a.b/s`, `(?s)a.b`, []string{"a\nb"}, nil},
		{`/a+/U`, `(?U)a+`, []string{"aaa"}, nil},
		{`/abc/A`, `\A(?:abc)`, []string{"abcd"}, []string{"xabc"}},
		{`/end\Z/`, `end(?:\n?\z)`, []string{"the end", "the end\n"}, []string{"end of it"}},
		{`/a\hb/`, `a[\t \x{a0}]b`, []string{"a b", "a\tb"}, []string{"a\nb"}},
		{`/[\h-]x/`, `[\t \x{a0}-]x`, []string{"-x", " x"}, nil},
		{`/a\Rb/`, `a(?:\r\n|\n|\r)b`, []string{"a\r\nb", "a\nb"}, nil},
		{`/x\ey/`, `x\x1by`, []string{"x\x1by"}, nil},
		{`/\Qa.b\E+/`, `\Qa.b\E+`, []string{"a.bb"}, []string{"axb"}},
		{`/a(?#comment)b/`, `ab`, []string{"ab"}, nil},
		{"/ a b # spaces\n c /x", `abc`, []string{"abc"}, []string{"a b c"}},
		{`/[[:digit:]]+/u`, `[[:digit:]]+`, []string{"42"}, []string{"x"}},
		{`/[]a]/`, `[\]a]`, []string{"]"}, []string{"b"}},
		{`/a\++/`, `a\++`, []string{"a+"}, nil},
		{`/(?<name>x)/D`, `(?<name>x)`, []string{"x"}, nil},
	}
	for _, tt := range tests {
		got, err := warninglist.TranslatePCRE(tt.pcre)
		if err != nil {
			t.Errorf("TranslatePCRE(%q): %v", tt.pcre, err)
			continue
		}
		if got != tt.want {
			t.Errorf("TranslatePCRE(%q) = %q, want %q", tt.pcre, got, tt.want)
		}
		re, err := regexp.Compile(got)
		if err != nil {
			t.Errorf("%q does not compile: %v", got, err)
			continue
		}
		for _, v := range tt.match {
			if !re.MatchString(v) {
				t.Errorf("%q does not match %q", tt.pcre, v)
			}
		}
		for _, v := range tt.noMatch {
			if re.MatchString(v) {
				t.Errorf("%q matches %q", tt.pcre, v)
			}
		}
	}
}

func TestTranslatePCRERefuses(t *testing.T) {
	tests := []struct{ pcre, want string }{
		{`^no-delimiters$`, "delimiter"},
		{`/unterminated`, "closing delimiter"},
		{`/x/`[:1], "not a delimited"},
		{`/(?=x)y/`, "lookaround"},
		{`/(?!x)y/`, "lookaround"},
		{`/(?<=x)y/`, "lookaround"},
		{`/(?<!x)y/`, "lookaround"},
		{`/(?>x)/`, "atomic"},
		{`/(a)\1/`, "backreferences"},
		{`/(?P<n>a)(?P=n)/`, "backreferences"},
		{`/\k<n>/`, "backreferences"},
		{`/a++/`, "possessive"},
		{`/a{2}+/`, "possessive"},
		{`/(?R)/`, "recursion"},
		{`/a\Gb/`, `\G`},
		{`/a/e`, "flag"},
		{`/a\/`, "backslash"},
	}
	for _, tt := range tests {
		_, err := warninglist.TranslatePCRE(tt.pcre)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("TranslatePCRE(%q) = %v, want an error saying %q", tt.pcre, err, tt.want)
		}
	}
}

// FuzzTranslatePCRE checks that translation never panics and that what it returns either
// compiles or is refused by the loader (never a pattern matching more than it should is
// not checkable here; the table above covers meaning).
func FuzzTranslatePCRE(f *testing.F) {
	for _, s := range []string{`/^(abuse|noc)\@.*$/i`, `#a#`, `/\Q`, `/[\h/`, `/(?#/`, `/a\`, "/a/x", `/[[:x/`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := warninglist.TranslatePCRE(s)
		if err != nil {
			return
		}
		_, _ = regexp.Compile(p)
	})
}
