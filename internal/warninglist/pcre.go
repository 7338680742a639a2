package warninglist

import (
	"errors"
	"fmt"
	"strings"
)

// TranslatePCRE turns a regex entry as misp-warninglists writes it for PHP's preg_match
// (a PCRE pattern between delimiters, then flags: /^(abuse|noc)\@.*$/i) into a pattern for
// Go's regexp (RE2). It returns an error for what RE2 cannot express with the same meaning:
// lookaround, backreferences, atomic groups, possessive quantifiers, recursion, and flags
// other than i, m, s, u, x, U, D, A and S. The caller skips such entries, as MISP skips
// patterns that do not compile.
//
// Escapes PCRE has and RE2 lacks are rewritten: \Z, \h, \H, \R, \e and PCRE's \v (vertical
// whitespace).
func TranslatePCRE(entry string) (string, error) {
	body, flags, err := splitDelimited(strings.TrimSpace(entry))
	if err != nil {
		return "", err
	}
	var inline strings.Builder
	anchored, extended := false, false
	for _, f := range flags {
		switch f {
		case 'i', 'm', 's', 'U':
			if !strings.ContainsRune(inline.String(), f) {
				inline.WriteRune(f)
			}
		case 'x':
			extended = true
		case 'A':
			anchored = true
		case 'u', 'D', 'S', '\n', '\r', ' ':
			// u: RE2 is UTF-8 already. D: RE2's $ never matches before a final newline,
			// which is what D asks for. S: a PCRE optimisation hint.
		default:
			return "", fmt.Errorf("flag %q has no RE2 equivalent", f)
		}
	}
	if extended {
		body = stripExtended(body)
	}
	out, err := translateBody(body)
	if err != nil {
		return "", err
	}
	if anchored {
		out = `\A(?:` + out + `)`
	}
	if inline.Len() > 0 {
		out = "(?" + inline.String() + ")" + out
	}
	return out, nil
}

// splitDelimited separates /body/flags. PCRE allows any non-alphanumeric, non-backslash,
// non-space delimiter, and the bracket pairs (), [], {} and <>.
func splitDelimited(s string) (body, flags string, err error) {
	if len(s) < 2 {
		return "", "", errors.New("not a delimited PCRE pattern")
	}
	open := s[0]
	if open == '\\' || open == ' ' || isAlnum(open) || open >= 0x80 {
		return "", "", fmt.Errorf("not a delimited PCRE pattern: %q is not a delimiter", open)
	}
	closing := open
	switch open {
	case '(':
		closing = ')'
	case '[':
		closing = ']'
	case '{':
		closing = '}'
	case '<':
		closing = '>'
	}
	end := strings.LastIndexByte(s[1:], closing)
	if end < 0 {
		return "", "", fmt.Errorf("no closing delimiter %q", closing)
	}
	return s[1 : 1+end], s[2+end:], nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// translateBody rewrites the PCRE-only constructs of a pattern body, outside and inside
// character classes, and refuses those RE2 cannot express.
func translateBody(p string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", errors.New("trailing backslash")
			}
			i++
			e := p[i]
			switch {
			case e == 'Q': // \Q...\E quotes literally in both syntaxes
				end := strings.Index(p[i+1:], `\E`)
				if end < 0 {
					b.WriteString(p[i-1:])
					i = len(p)
					continue
				}
				b.WriteString(p[i-1 : i+1+end+2])
				i += end + 2
			case e >= '1' && e <= '9' && !inClass, e == 'g', e == 'k':
				return "", errors.New("backreferences are not supported by RE2")
			case e == 'G', e == 'K', e == 'X', e == 'C':
				return "", fmt.Errorf(`\%c is not supported by RE2`, e)
			case e == 'Z':
				if inClass {
					return "", errors.New(`\Z inside a character class`)
				}
				b.WriteString(`(?:\n?\z)`)
			case e == 'h':
				b.WriteString(class(inClass, `\t \x{a0}`))
			case e == 'H':
				if inClass {
					return "", errors.New(`\H inside a character class`)
				}
				b.WriteString(`[^\t \x{a0}]`)
			case e == 'v':
				b.WriteString(class(inClass, `\n\x0b\f\r\x{85}\x{2028}\x{2029}`))
			case e == 'V':
				if inClass {
					return "", errors.New(`\V inside a character class`)
				}
				b.WriteString(`[^\n\x0b\f\r\x{85}\x{2028}\x{2029}]`)
			case e == 'R':
				if inClass {
					return "", errors.New(`\R inside a character class`)
				}
				b.WriteString(`(?:\r\n|\n|\r)`)
			case e == 'e':
				b.WriteString(`\x1b`)
			case e == '/':
				b.WriteByte('/')
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case inClass:
			if c == ']' {
				inClass = false
			} else if c == '[' && strings.HasPrefix(p[i:], "[:") {
				// a POSIX class [:alpha:] inside a class: copy it whole
				end := strings.Index(p[i+2:], ":]")
				if end >= 0 {
					b.WriteString(p[i : i+2+end+2])
					i += 2 + end + 1
					continue
				}
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal in both syntaxes.
			if strings.HasPrefix(p[i+1:], "^") {
				b.WriteByte('^')
				i++
			}
			if strings.HasPrefix(p[i+1:], "]") {
				b.WriteString(`\]`)
				i++
			}
		case c == '(' && strings.HasPrefix(p[i+1:], "?"):
			rest := p[i+2:]
			switch {
			case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"),
				strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
				return "", errors.New("lookaround is not supported by RE2")
			case strings.HasPrefix(rest, ">"):
				return "", errors.New("atomic groups are not supported by RE2")
			case strings.HasPrefix(rest, "|"), strings.HasPrefix(rest, "R"), strings.HasPrefix(rest, "&"),
				rest != "" && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == '+' || rest[0] == '-' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9'):
				return "", errors.New("branch reset groups and recursion are not supported by RE2")
			case strings.HasPrefix(rest, "#"):
				end := strings.IndexByte(rest, ')')
				if end < 0 {
					return "", errors.New("unterminated comment")
				}
				i += 2 + end
				continue
			case strings.HasPrefix(rest, "P="), strings.HasPrefix(rest, "P>"):
				return "", errors.New("backreferences are not supported by RE2")
			}
			b.WriteByte(c)
		case (c == '+') && i > 0 && isQuantifierEnd(p, i-1):
			return "", errors.New("possessive quantifiers are not supported by RE2")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// class writes the members of an escape class: bare inside a character class, bracketed
// outside.
func class(inClass bool, members string) string {
	if inClass {
		return members
	}
	return "[" + members + "]"
}

// isQuantifierEnd reports whether p[i] ends a quantifier (*, +, ?, or {n,m}) that is not
// itself escaped, so that a '+' after it makes the quantifier possessive.
func isQuantifierEnd(p string, i int) bool {
	switch p[i] {
	case '*', '+', '?':
		return !escaped(p, i)
	case '}':
		open := strings.LastIndexByte(p[:i], '{')
		if open < 0 || escaped(p, open) {
			return false
		}
		inner := p[open+1 : i]
		return inner != "" && strings.Trim(inner, "0123456789,") == ""
	}
	return false
}

// escaped reports whether p[i] is preceded by an odd number of backslashes.
func escaped(p string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && p[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// stripExtended applies PCRE's x flag: unescaped whitespace outside character classes is
// dropped, and # starts a comment that runs to the end of the line.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
		case c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
