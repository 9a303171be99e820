package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// instruction is one logical Dockerfile line: continuation lines joined,
// comments dropped, leading --flags split off.
type instruction struct {
	line  int      // first physical line, for messages
	cmd   string   // upper-case keyword: RUN, COPY, …
	flags []string // "--name=value" as written, in order
	args  string   // the rest, not yet expanded
}

func (in instruction) String() string {
	s := in.cmd
	for _, f := range in.flags {
		s += " " + f
	}
	return s + " " + in.args
}

// stageDef is one FROM … [AS name] and the instructions up to the next FROM.
type stageDef struct {
	index  int
	name   string // lower-case; "" when the stage has no AS
	from   string // image reference, not yet expanded
	line   int
	instrs []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM (which
// only FROM lines see) and the stages.
type dockerfile struct {
	globalArgs []instruction
	stages     []*stageDef
}

// flagged lists the instructions whose leading --flags are options of the
// instruction rather than part of its arguments.
var flagged = map[string]bool{"RUN": true, "COPY": true, "ADD": true, "FROM": true, "HEALTHCHECK": true}

// parseDockerfile splits text into instructions the way the Dockerfile
// frontend does for the subset imgd uses: backslash continuations, comment
// lines (also inside a continuation), no heredocs, no escape directive.
func parseDockerfile(text string) (*dockerfile, error) {
	var logical []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // blank and comment lines, also between continued lines
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body)
			continue
		}
		cur.WriteString(line)
		in, err := splitInstruction(start, cur.String())
		if err != nil {
			return nil, err
		}
		logical = append(logical, in)
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation runs past the end of the file", start)
	}
	df := &dockerfile{}
	for _, in := range logical {
		if in.cmd == "FROM" {
			words := strings.Fields(in.args)
			st := &stageDef{index: len(df.stages), line: in.line}
			switch {
			case len(words) == 1:
				st.from = words[0]
			case len(words) == 3 && strings.EqualFold(words[1], "AS"):
				st.from, st.name = words[0], strings.ToLower(words[2])
			default:
				return nil, fmt.Errorf("line %d: FROM wants IMAGE [AS NAME], got %q", in.line, in.args)
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			df.globalArgs = append(df.globalArgs, in)
			continue
		}
		st := df.stages[len(df.stages)-1]
		st.instrs = append(st.instrs, in)
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("no FROM line")
	}
	return df, nil
}

func splitInstruction(line int, s string) (instruction, error) {
	s = strings.TrimSpace(s)
	kw, rest, _ := strings.Cut(s, " ")
	in := instruction{line: line, cmd: strings.ToUpper(kw)}
	rest = strings.TrimSpace(rest)
	if flagged[in.cmd] {
		for strings.HasPrefix(rest, "--") {
			f, r, _ := strings.Cut(rest, " ")
			in.flags = append(in.flags, f)
			rest = strings.TrimSpace(r)
		}
	}
	if strings.Contains(rest, "<<") && (in.cmd == "RUN" || in.cmd == "COPY") {
		return in, fmt.Errorf("line %d: heredocs are not supported by this check", line)
	}
	in.args = rest
	return in, nil
}

// execForm returns the JSON array of an exec-form argument, or false for
// the shell form.
func execForm(args string) ([]string, bool) {
	s := strings.TrimSpace(args)
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return nil, false
	}
	return argv, true
}

// words expands variables in s and splits it into words the way the
// Dockerfile frontend treats ENV, ARG, COPY, WORKDIR and USER arguments:
// single quotes keep everything literal, double quotes keep spaces and
// allow $VAR, a backslash escapes the next character.
func words(s string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, w.String())
		}
		w.Reset()
		inWord = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`, s[i+1]) >= 0:
					i++
					w.WriteByte(s[i])
				case s[i] == '$':
					v, n, err := expandVar(s[i:], lookup)
					if err != nil {
						return nil, err
					}
					w.WriteString(v)
					i += n - 1
				default:
					w.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '$':
			v, n, err := expandVar(s[i:], lookup)
			if err != nil {
				return nil, err
			}
			w.WriteString(v)
			i += n - 1
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return out, nil
}

// expand is words joined back with single spaces: the value of a
// one-word argument such as WORKDIR or a FROM image reference.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	ws, err := words(s, lookup)
	return strings.Join(ws, " "), err
}

// expandVar expands the $NAME, ${NAME}, ${NAME:-word}, ${NAME-word},
// ${NAME:+word} or ${NAME+word} at the start of s and returns its value and
// how many bytes of s it used.
func expandVar(s string, lookup func(string) (string, bool)) (string, int, error) {
	isName := func(c byte) bool {
		return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	if len(s) < 2 {
		return "$", 1, nil
	}
	if s[1] != '{' {
		n := 1
		for n < len(s) && isName(s[n]) {
			n++
		}
		if n == 1 {
			return "$", 1, nil
		}
		v, _ := lookup(s[1:n])
		return v, n, nil
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", 0, fmt.Errorf("missing } in %q", s)
	}
	body := s[2:end]
	n := 0
	for n < len(body) && isName(body[n]) {
		n++
	}
	name, op := body[:n], body[n:]
	v, set := lookup(name)
	switch {
	case op == "":
		return v, end + 1, nil
	case strings.HasPrefix(op, ":-"):
		if v == "" {
			v, _ = expand(op[2:], lookup)
		}
	case strings.HasPrefix(op, "-"):
		if !set {
			v, _ = expand(op[1:], lookup)
		}
	case strings.HasPrefix(op, ":+"):
		if v != "" {
			v, _ = expand(op[2:], lookup)
		}
	case strings.HasPrefix(op, "+"):
		if set {
			v, _ = expand(op[1:], lookup)
		} else {
			v = ""
		}
	default:
		return "", 0, fmt.Errorf("unsupported variable form ${%s}", body)
	}
	return v, end + 1, nil
}

// keyValues parses the arguments of ENV or ARG: NAME=value pairs, or for
// ENV the legacy "NAME value with spaces" form.
func keyValues(cmd, args string, lookup func(string) (string, bool)) ([][2]string, error) {
	ws, err := words(args, lookup)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("%s without arguments", cmd)
	}
	if cmd == "ENV" && !strings.Contains(ws[0], "=") {
		return [][2]string{{ws[0], strings.Join(ws[1:], " ")}}, nil
	}
	var kv [][2]string
	for _, w := range ws {
		k, v, ok := strings.Cut(w, "=")
		if !ok && cmd == "ENV" {
			return nil, fmt.Errorf("ENV %q: want NAME=value", w)
		}
		if !ok {
			v = "\x00unset" // ARG NAME without a default
		}
		kv = append(kv, [2]string{k, v})
	}
	return kv, nil
}
