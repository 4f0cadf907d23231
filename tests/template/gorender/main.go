// gorender renders the template corpus with Go's own text/template and the
// pure functions of consul-template (the same semantics, written here with
// the standard library only), so tests/test_template_diff.c can compare
// the C engine byte for byte.
//
// Usage: gorender corpus-file...
//
//	gorender -bench N corpus-file...   (ns per render of each case)
//
// Output, per case: "name\tkind\tlen(out)\tlen(err)\n" + out + err, where
// kind is ok, missing (a dependency was missing) or error.
//
// Corpus format (tests/template/corpus/*.tmpl): a case starts with a line
// "### name"; then optional "#opt key=value" lines (missingkey=zero|error,
// left=.., right=.., env=NAME=VALUE, missing=NAME), an optional
// "#data <json>" line; the rest up to the next "### " line is the template,
// its last newline removed.
package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

type testCase struct {
	name     string
	opts     map[string][]string
	data     string
	template string
}

func parseCorpus(path string) ([]testCase, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []testCase
	var cur *testCase
	var body []string
	inBody := false
	flush := func() {
		if cur != nil {
			cur.template = strings.Join(body, "\n")
			cases = append(cases, *cur)
		}
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "### ") {
			flush()
			cur = &testCase{name: strings.TrimSpace(line[4:]), opts: map[string][]string{}}
			body = nil
			inBody = false
			continue
		}
		if cur == nil {
			continue
		}
		if !inBody && strings.HasPrefix(line, "#opt ") {
			kv := strings.SplitN(line[5:], "=", 2)
			if len(kv) == 2 {
				cur.opts[kv[0]] = append(cur.opts[kv[0]], kv[1])
			}
			continue
		}
		if !inBody && strings.HasPrefix(line, "#data ") {
			cur.data = line[6:]
			continue
		}
		inBody = true
		body = append(body, line)
	}
	flush()
	return cases, nil
}

// decodeData turns JSON numbers without fraction or exponent into ints.
func decodeData(s string) (interface{}, error) {
	if s == "" {
		return nil, nil
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v interface{}
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v), nil
}

func convert(v interface{}) interface{} {
	switch t := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(t), ".eE") {
			if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
				return int(i)
			}
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		return f
	case map[string]interface{}:
		for k, e := range t {
			t[k] = convert(e)
		}
		return t
	case []interface{}:
		for i, e := range t {
			t[i] = convert(e)
		}
		return t
	}
	return v
}

var now = time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.UTC)

func funcs(env map[string]string, missing map[string]bool, sawMissing *bool) template.FuncMap {
	return template.FuncMap{
		"env": func(s string) (string, error) {
			if missing[s] {
				*sawMissing = true
				return "", nil
			}
			return env[s], nil
		},
		"envOrDefault": func(s, def string) (string, error) {
			if missing[s] {
				*sawMissing = true
				return "", nil
			}
			if v, ok := env[s]; ok {
				return v, nil
			}
			return def, nil
		},
		"base64Decode": func(s string) (string, error) {
			v, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", fmt.Errorf("base64Decode: %w", err)
			}
			return string(v), nil
		},
		"base64Encode": func(s string) (string, error) {
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		},
		"base64URLDecode": func(s string) (string, error) {
			v, err := base64.URLEncoding.DecodeString(s)
			if err != nil {
				return "", fmt.Errorf("base64URLDecode: %w", err)
			}
			return string(v), nil
		},
		"base64URLEncode": func(s string) (string, error) {
			return base64.URLEncoding.EncodeToString([]byte(s)), nil
		},
		"contains":       func(v, l interface{}) (bool, error) { return in(l, v) },
		"containsAll":    containsSomeFunc(true, true),
		"containsAny":    containsSomeFunc(false, false),
		"containsNone":   containsSomeFunc(true, false),
		"containsNotAll": containsSomeFunc(false, true),
		"in":             in,
		"indent":         indent,
		"loop":           loop,
		"join":           func(sep string, a []string) (string, error) { return strings.Join(a, sep), nil },
		"trim":           func(cutset, s string) (string, error) { return strings.Trim(s, cutset), nil },
		"trimPrefix":     func(p, s string) (string, error) { return strings.TrimPrefix(s, p), nil },
		"trimSuffix":     func(p, s string) (string, error) { return strings.TrimSuffix(s, p), nil },
		"trimSpace":      func(s string) (string, error) { return strings.TrimSpace(s), nil },
		"parseBool": func(s string) (bool, error) {
			if s == "" {
				return false, nil
			}
			r, err := strconv.ParseBool(s)
			if err != nil {
				return false, fmt.Errorf("parseBool: %w", err)
			}
			return r, nil
		},
		"parseFloat": func(s string) (float64, error) {
			if s == "" {
				return 0, nil
			}
			r, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("parseFloat: %w", err)
			}
			return r, nil
		},
		"parseInt": parseInt,
		"parseUint": func(s string) (uint64, error) {
			if s == "" {
				return 0, nil
			}
			r, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parseUint: %w", err)
			}
			return r, nil
		},
		"parseJSON": func(s string) (interface{}, error) {
			if s == "" {
				return map[string]interface{}{}, nil
			}
			var data interface{}
			if err := json.Unmarshal([]byte(s), &data); err != nil {
				return nil, err
			}
			return data, nil
		},
		"plugin":      denied,
		"writeToFile": denied,
		"regexReplaceAll": func(re, pl, s string) (string, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return "", err
			}
			return c.ReplaceAllString(s, pl), nil
		},
		"regexMatch": func(re, s string) (bool, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return false, err
			}
			return c.MatchString(s), nil
		},
		"replaceAll": func(f, t, s string) (string, error) { return strings.Replace(s, f, t, -1), nil },
		"sha256Hex": func(s string) (string, error) {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:]), nil
		},
		"md5sum": func(s string) (string, error) { return fmt.Sprintf("%x", md5.Sum([]byte(s))), nil },
		"split": func(sep, s string) ([]string, error) {
			s = strings.TrimSpace(s)
			if s == "" {
				return []string{}, nil
			}
			return strings.Split(s, sep), nil
		},
		"splitToMap": func(sep1, sep2, s string) (map[string]string, error) {
			s = strings.TrimSpace(s)
			if s == "" {
				return map[string]string{}, nil
			}
			s1 := strings.Split(s, sep1)
			m := make(map[string]string, len(s1))
			for i := range s1 {
				k, v, f := strings.Cut(s1[i], sep2)
				if !f {
					continue
				}
				m[k] = v
			}
			return m, nil
		},
		"timestamp": func(s ...string) (string, error) {
			switch len(s) {
			case 0:
				return now.Format(time.RFC3339), nil
			case 1:
				if s[0] == "unix" {
					return strconv.FormatInt(now.Unix(), 10), nil
				}
				return now.Format(s[0]), nil
			default:
				return "", fmt.Errorf("timestamp: wrong number of arguments, expected 0 or 1"+
					", but got %d", len(s))
			}
		},
		"toLower": func(s string) (string, error) { return strings.ToLower(s), nil },
		"toUpper": func(s string) (string, error) { return strings.ToUpper(s), nil },
		"toJSON": func(i interface{}) (string, error) {
			r, err := json.Marshal(i)
			if err != nil {
				return "", fmt.Errorf("toJSON: %w", err)
			}
			return string(bytes.TrimSpace(r)), err
		},
		"toJSONPretty": func(m interface{}) (string, error) {
			r, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				return "", fmt.Errorf("toJSONPretty: %w", err)
			}
			return string(bytes.TrimSpace(r)), err
		},
		"add":      arith("add"),
		"subtract": arith("subtract"),
		"multiply": arith("multiply"),
		"divide":   arith("divide"),
		"modulo":   arith("modulo"),
		"minimum":  arith("minimum"),
		"maximum":  arith("maximum"),
	}
}

func denied(...string) (string, error) {
	return "", fmt.Errorf("function is disabled")
}

func parseInt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	r, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parseInt: %w", err)
	}
	return r, nil
}

func containsSomeFunc(retTrue, invert bool) func([]interface{}, interface{}) (bool, error) {
	return func(v []interface{}, l interface{}) (bool, error) {
		for i := 0; i < len(v); i++ {
			if ok, _ := in(l, v[i]); ok != invert {
				return !retTrue, nil
			}
		}
		return retTrue, nil
	}
}

func in(l, v interface{}) (bool, error) {
	lv := reflect.ValueOf(l)
	vv := reflect.ValueOf(v)
	switch lv.Kind() {
	case reflect.Array, reflect.Slice:
		var interfaceSlice []interface{}
		if reflect.TypeOf(l).Elem().Kind() == reflect.Interface {
			interfaceSlice = l.([]interface{})
		}
		for i := 0; i < lv.Len(); i++ {
			var lvv reflect.Value
			if interfaceSlice != nil {
				lvv = reflect.ValueOf(interfaceSlice[i])
			} else {
				lvv = lv.Index(i)
			}
			switch lvv.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				switch vv.Kind() {
				case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
					if vv.Int() == lvv.Int() {
						return true, nil
					}
				}
			case reflect.Float32, reflect.Float64:
				switch vv.Kind() {
				case reflect.Float32, reflect.Float64:
					if vv.Float() == lvv.Float() {
						return true, nil
					}
				}
			case reflect.String:
				if vv.Type() == lvv.Type() && vv.String() == lvv.String() {
					return true, nil
				}
			}
		}
	case reflect.String:
		if vv.Type() == lv.Type() && strings.Contains(lv.String(), vv.String()) {
			return true, nil
		}
	}
	return false, nil
}

func indent(spaces int, s string) (string, error) {
	if spaces < 0 {
		return "", fmt.Errorf("indent value must be a positive integer")
	}
	var output, prefix []byte
	var sp bool
	var size int
	prefix = []byte(strings.Repeat(" ", spaces))
	sp = true
	for _, c := range []byte(s) {
		if sp && c != '\n' {
			output = append(output, prefix...)
			size += spaces
		}
		output = append(output, c)
		sp = c == '\n'
		size++
	}
	return string(output[:size]), nil
}

func loop(ifaces ...interface{}) (<-chan int64, error) {
	to64 := func(i interface{}) (int64, error) {
		v := reflect.ValueOf(i)
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return v.Int(), nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return int64(v.Uint()), nil
		case reflect.String:
			return parseInt(v.String())
		}
		return 0, fmt.Errorf("loop: bad argument type: %T", i)
	}
	var i1, i2 interface{}
	switch len(ifaces) {
	case 1:
		i1, i2 = 0, ifaces[0]
	case 2:
		i1, i2 = ifaces[0], ifaces[1]
	default:
		return nil, fmt.Errorf("loop: wrong number of arguments, expected "+
			"1 or 2, but got %d", len(ifaces))
	}
	start, err := to64(i1)
	if err != nil {
		return nil, err
	}
	stop, err := to64(i2)
	if err != nil {
		return nil, err
	}
	ch := make(chan int64)
	go func() {
		for i := start; i < stop; i++ {
			ch <- i
		}
		close(ch)
	}()
	return ch, nil
}

// arith is consul-template's add/subtract/... (b, a): a OP b.
func arith(name string) func(b, a interface{}) (interface{}, error) {
	return func(b, a interface{}) (interface{}, error) {
		av := reflect.ValueOf(a)
		bv := reflect.ValueOf(b)
		kind := func(v reflect.Value) int {
			switch v.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				return 1
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				return 2
			case reflect.Float32, reflect.Float64:
				if name == "modulo" {
					return 0
				}
				return 3
			}
			return 0
		}
		ka, kb := kind(av), kind(bv)
		if ka == 0 {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, av, a)
		}
		if kb == 0 {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, bv, b)
		}
		if name == "minimum" || name == "maximum" {
			less := func(x, y reflect.Value, kx, ky int) bool {
				switch {
				case kx == 1 && ky == 1:
					return x.Int() < y.Int()
				case kx == 1 && ky == 2:
					return x.Int() < int64(y.Uint())
				case kx == 2 && ky == 1:
					return int64(x.Uint()) < y.Int()
				case kx == 2 && ky == 2:
					return x.Uint() < y.Uint()
				}
				fx, fy := toF(x, kx), toF(y, ky)
				return fx < fy
			}
			var pickA bool
			if name == "minimum" {
				pickA = less(av, bv, ka, kb)
			} else {
				pickA = less(bv, av, kb, ka)
			}
			p, k := bv, kb
			if pickA {
				p, k = av, ka
			}
			switch k {
			case 1:
				return p.Int(), nil
			case 2:
				return p.Uint(), nil
			}
			return p.Float(), nil
		}
		if ka == 3 || kb == 3 {
			x, y := toF(av, ka), toF(bv, kb)
			switch name {
			case "add":
				return x + y, nil
			case "subtract":
				return x - y, nil
			case "multiply":
				return x * y, nil
			}
			return x / y, nil
		}
		if ka == 2 && kb == 2 {
			x, y := av.Uint(), bv.Uint()
			switch name {
			case "add":
				return x + y, nil
			case "subtract":
				return x - y, nil
			case "multiply":
				return x * y, nil
			case "divide":
				return x / y, nil
			}
			return x % y, nil
		}
		var x, y int64
		if ka == 1 {
			x = av.Int()
		} else {
			x = int64(av.Uint())
		}
		if kb == 1 {
			y = bv.Int()
		} else {
			y = int64(bv.Uint())
		}
		switch name {
		case "add":
			return x + y, nil
		case "subtract":
			return x - y, nil
		case "multiply":
			return x * y, nil
		case "divide":
			return x / y, nil
		}
		return x % y, nil
	}
}

func toF(v reflect.Value, k int) float64 {
	switch k {
	case 1:
		return float64(v.Int())
	case 2:
		return float64(v.Uint())
	}
	return v.Float()
}

func render(c testCase) (kind string, out []byte, errText string) {
	env := map[string]string{}
	for _, e := range c.opts["env"] {
		kv := strings.SplitN(e, "=", 2)
		if len(kv) == 2 {
			env[kv[0]] = kv[1]
		}
	}
	missing := map[string]bool{}
	for _, m := range c.opts["missing"] {
		missing[m] = true
	}
	sawMissing := false
	t := template.New(c.name).Funcs(funcs(env, missing, &sawMissing))
	if mk := c.opts["missingkey"]; len(mk) > 0 {
		t = t.Option("missingkey=" + mk[0])
	}
	left, right := "", ""
	if l := c.opts["left"]; len(l) > 0 {
		left = l[0]
	}
	if r := c.opts["right"]; len(r) > 0 {
		right = r[0]
	}
	t = t.Delims(left, right)
	data, err := decodeData(c.data)
	if err != nil {
		return "error", nil, "bad data: " + err.Error()
	}
	if _, err := t.Parse(c.template); err != nil {
		return "error", nil, err.Error()
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "error", b.Bytes(), err.Error()
	}
	if sawMissing {
		return "missing", b.Bytes(), ""
	}
	return "ok", b.Bytes(), ""
}

// benchSecret stands in for Vault's secret in bench mode: the shape the
// seed jobs read (.Data.username and so on).
func benchSecret(path string) (interface{}, error) {
	return map[string]interface{}{"Data": map[string]interface{}{
		"username": "app", "password": "s3cret", "access_key": "AKIA123",
		"secret_key": "abc/def"}}, nil
}

func bench(n int, paths []string) {
	for _, path := range paths {
		cases, err := parseCorpus(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range cases {
			env := map[string]string{}
			for _, e := range c.opts["env"] {
				kv := strings.SplitN(e, "=", 2)
				if len(kv) == 2 {
					env[kv[0]] = kv[1]
				}
			}
			saw := false
			fm := funcs(env, map[string]bool{}, &saw)
			fm["secret"] = benchSecret
			t, err := template.New(c.name).Funcs(fm).Option("missingkey=zero").Parse(c.template)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			data, _ := decodeData(c.data)
			var b bytes.Buffer
			for i := 0; i < n/10+1; i++ {
				b.Reset()
				t.Execute(&b, data)
			}
			start := time.Now()
			for i := 0; i < n; i++ {
				b.Reset()
				if err := t.Execute(&b, data); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(n)
			fmt.Printf("%s\t%.0f\t%d\n", c.name, ns, b.Len())
		}
	}
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-bench" {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "usage: gorender -bench N corpus...")
			os.Exit(2)
		}
		bench(n, os.Args[3:])
		return
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for _, path := range os.Args[1:] {
		cases, err := parseCorpus(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range cases {
			kind, out, e := render(c)
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", c.name, kind, len(out), len(e))
			w.Write(out)
			w.WriteString(e)
		}
	}
}
