// snapd-check cross-checks pocketses' assertions with snapd's own Go code (Debian's
// golang-github-snapcore-snapd-dev). Build offline in GOPATH mode, see build.sh.
//
//	snapd-check keyid KEY.pem                     print the key's sha3-384 id as snapd computes it
//	snapd-check sign KEY.pem INPUT.json           sign like `snap sign` (signtool.Sign), print the assertion
//	snapd-check verify [-trusted F]... [-assertions F]... FILE
//	                                              check FILE's first model through snapd's Database
//	snapd-check decode FILE                       decode every assertion of FILE with snapd's Decoder
//	snapd-check sigtime FILE                      print the signature creation time of FILE's first assertion
package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"golang.org/x/crypto/openpgp/packet"

	"github.com/snapcore/snapd/asserts"
	"github.com/snapcore/snapd/asserts/signtool"
)

type files []string

func (f *files) String() string     { return fmt.Sprint(*f) }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "snapd-check: "+format+"\n", args...)
	os.Exit(1)
}

func readKey(path string) asserts.PrivateKey {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("cannot read key: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		fail("cannot read key: no PEM block in %s", path)
	}
	var priv *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		priv = k
	} else if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			fail("not an RSA key: %s", path)
		}
		priv = rk
	} else {
		fail("cannot parse key %s: %v", path, err)
	}
	return asserts.RSAPrivateKey(priv)
}

func readAssertions(path string) []asserts.Assertion {
	f, err := os.Open(path)
	if err != nil {
		fail("cannot open %s: %v", path, err)
	}
	defer f.Close()
	dec := asserts.NewDecoder(f)
	var out []asserts.Assertion
	for {
		a, err := dec.Decode()
		if err == io.EOF {
			return out
		}
		if err != nil {
			fail("cannot decode %s: %v", path, err)
		}
		out = append(out, a)
	}
}

var rank = map[string]int{"account": 0, "account-key": 1}

func main() {
	if len(os.Args) < 2 {
		fail("usage: snapd-check keyid|sign|verify|decode|sigtime ...")
	}
	switch os.Args[1] {
	case "keyid":
		fmt.Println(readKey(os.Args[2]).PublicKey().ID())
	case "sign":
		key := readKey(os.Args[2])
		input, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail("cannot read input: %v", err)
		}
		mgr := asserts.NewMemoryKeypairManager()
		if err := mgr.Put(key); err != nil {
			fail("cannot use key: %v", err)
		}
		out, err := signtool.Sign(&signtool.Options{KeyID: key.PublicKey().ID(), Statement: input}, mgr)
		if err != nil {
			fail("cannot sign: %v", err)
		}
		os.Stdout.Write(out)
	case "verify":
		fs := flag.NewFlagSet("verify", flag.ExitOnError)
		var trusted, pool files
		fs.Var(&trusted, "trusted", "trusted assertions (default: snapd's built-in ones)")
		fs.Var(&pool, "assertions", "more assertions")
		fs.Parse(os.Args[2:])
		if fs.NArg() != 1 {
			fail("usage: snapd-check verify [-trusted F]... [-assertions F]... FILE")
		}
		cfg := &asserts.DatabaseConfig{Backstore: asserts.NewMemoryBackstore()}
		if len(trusted) == 0 {
			cfg.Trusted = sysdbTrusted()
			cfg.OtherPredefined = sysdbPredefined()
		}
		for _, t := range trusted {
			cfg.Trusted = append(cfg.Trusted, readAssertions(t)...)
		}
		db, err := asserts.OpenDatabase(cfg)
		if err != nil {
			fail("cannot open database: %v", err)
		}
		all := readAssertions(fs.Arg(0))
		var target asserts.Assertion
		var others []asserts.Assertion
		for _, a := range all {
			if target == nil && a.Type() == asserts.ModelType {
				target = a
			} else {
				others = append(others, a)
			}
		}
		if target == nil {
			fail("no model assertion in %s", fs.Arg(0))
		}
		for _, p := range pool {
			others = append(others, readAssertions(p)...)
		}
		sort.SliceStable(others, func(i, j int) bool {
			ri, ok := rank[others[i].Type().Name]
			if !ok {
				ri = 2
			}
			rj, ok := rank[others[j].Type().Name]
			if !ok {
				rj = 2
			}
			return ri < rj
		})
		for _, a := range others {
			if err := db.Add(a); err != nil {
				var already *asserts.RevisionError
				if errors.As(err, &already) {
					continue
				}
				fail("cannot add %v: %v", a.Ref(), err)
			}
		}
		if err := db.Check(target); err != nil {
			fail("cannot verify %v: %v", target.Ref(), err)
		}
		fmt.Printf("verified %v\n", target.Ref())
	case "decode":
		for _, a := range readAssertions(os.Args[2]) {
			fmt.Printf("ok %v\n", a.Ref())
		}
	case "sigtime":
		a := readAssertions(os.Args[2])[0]
		_, sig := a.Signature()
		raw, err := base64.StdEncoding.DecodeString(string(bytes.ReplaceAll(sig, []byte("\n"), nil)))
		if err != nil {
			fail("cannot decode signature: %v", err)
		}
		pkt, err := packet.Read(bytes.NewReader(raw[1:]))
		if err != nil {
			fail("cannot read signature packet: %v", err)
		}
		s, ok := pkt.(*packet.Signature)
		if !ok {
			fail("not a signature packet")
		}
		fmt.Println(s.CreationTime.UTC().Format(time.RFC3339))
	default:
		fail("unknown command %q", os.Args[1])
	}
}
