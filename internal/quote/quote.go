// SPDX-License-Identifier: Apache-2.0

// Package quote shows file names in line-oriented text output so that a
// name can neither forge a line nor reach the terminal as a control
// sequence, and can still be copied back exactly.
//
// The escaping (documented in docs/cli.md) is bash's ANSI-C quoting, as
// "ls --quoting-style=shell-escape" and "find -printf %q" use it: a name
// made only of letters, digits and . _ - + , / : = @ % ^ ~ (and printable
// non-ASCII characters) is shown as it is; any other name is shown whole
// as $'...', in which \\ is a backslash, \' a quote, \n \t \r \a \b \f \v
// \e the control characters, \xHH a byte that is not part of valid UTF-8
// or another control byte, and \uHHHH / \UHHHHHHHH a character that is not
// printable (format and bidi controls such as U+202E). Pasted into bash,
// the quoted form is the name's exact bytes.
package quote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// plain reports whether s is shown as it is.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			// invalid UTF-8 (or a literal U+FFFD, which would be
			// indistinguishable from it)
			return false
		case r < utf8.RuneSelf:
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-+,/:=@%^~", r)) {
				return false
			}
		case !unicode.IsPrint(r):
			return false
		}
	}
	return true
}

// Name returns s as text output shows a file name.
func Name(s string) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		i += n
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		case 0x1b:
			b.WriteString(`\e`)
		default:
			switch {
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r == ' ' || r < utf8.RuneSelf || (unicode.IsPrint(r) && r != utf8.RuneError):
				b.WriteRune(r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// ErrSyntax is returned by Unquote for a string Name cannot have made.
var ErrSyntax = errors.New("quote: not a quoted name")

// Unquote reverses Name.
func Unquote(q string) (string, error) {
	if !strings.HasPrefix(q, "$'") {
		if !plain(q) {
			return "", ErrSyntax
		}
		return q, nil
	}
	if len(q) < 3 || q[len(q)-1] != '\'' {
		return "", ErrSyntax
	}
	body := q[2 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' {
			return "", ErrSyntax
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(body) {
			return "", ErrSyntax
		}
		i++
		switch body[i] {
		case '\\':
			b.WriteByte('\\')
		case '\'':
			b.WriteByte('\'')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'e':
			b.WriteByte(0x1b)
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[body[i]]
			if i+width >= len(body) {
				return "", ErrSyntax
			}
			v, err := strconv.ParseUint(body[i+1:i+1+width], 16, 32)
			if err != nil {
				return "", ErrSyntax
			}
			if body[i] == 'x' {
				b.WriteByte(byte(v))
			} else {
				if !utf8.ValidRune(rune(v)) {
					return "", ErrSyntax
				}
				b.WriteRune(rune(v))
			}
			i += width
		default:
			return "", ErrSyntax
		}
	}
	return b.String(), nil
}

// Text returns s, free-form text that may hold names (an error message,
// a reason), with every byte that could break a line or reach the
// terminal escaped as in Name (\n, \e, \xHH, \uHHHH; and \\), but without
// the quotes: for messages, where Name would quote every space.
func Text(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !unicode.IsPrint(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	q := Name(s)
	if strings.HasPrefix(q, "$'") {
		q = strings.ReplaceAll(q[2:len(q)-1], `\'`, "'")
	}
	return q
}
