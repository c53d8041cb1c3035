// testbrand exports what snapd's own test suite signs with, so that pocketses can mint a brand
// that a snapd built with `-tags withtestkeys` trusts. Built offline in GOPATH mode against
// Debian's golang-github-snapcore-snapd-dev (see .ci/install.d/snapd-testkeys.sh).
//
//	testbrand export DIR
//	testbrand store-front LISTEN UPSTREAM
//
// writes into DIR:
//
//	root.pem                  the test root's private key ("testrootorg", asserts/systestkeys),
//	                          as a PKCS#1 PEM that `pocketses key import` reads
//	developer1.pem            assertstest.DevKey: the key tests/lib/fakedevicesvc signs serials
//	                          with, as authority and brand "developer1"
//	testrootorg.account       the trusted root account and account-key a withtestkeys snapd
//	testrootorg.account-key   has built in (for verifying chains on the host)
//	teststore.account-key     the test store's account-key (signs snap-declarations and
//	                          snap-revisions made by fakestore), signed by the test root
//
// store-front answers, on LISTEN, the two device-session endpoints a registered snapd calls
// before any store request (POST api/v1/snaps/auth/nonces and .../sessions, store/auth.go) and
// which snapd 2.57's fakestore lacks (its "/" answers 418, and every store request of a device
// with a serial then fails with "cannot get nonce from store"); everything else is passed to
// the fakestore at UPSTREAM unchanged. The session it hands out is an opaque token: fakestore
// checks no authorization.
//
// Why a Go helper at all: the keys exist only as OpenPGP private-key packets inside snapd's Go
// source; pocketses reads PEM. Everything else (account, account-key, models) is signed by
// pocketses itself with these keys.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapcore/snapd/asserts"
	"github.com/snapcore/snapd/asserts/assertstest"
	"github.com/snapcore/snapd/asserts/systestkeys"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "testbrand: "+format+"\n", args...)
	os.Exit(1)
}

func writePEM(path, armored string) {
	_, rsaKey := assertstest.ReadPrivKey(armored)
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		fail("cannot write %s: %v", path, err)
	}
}

func writeAssertion(path string, a asserts.Assertion) {
	if err := os.WriteFile(path, asserts.Encode(a), 0o644); err != nil {
		fail("cannot write %s: %v", path, err)
	}
}

// storeFront serves the device-session endpoints and proxies the rest to upstream.
func storeFront(listen, upstream string) {
	target, err := url.Parse(upstream)
	if err != nil {
		fail("cannot parse %q: %v", upstream, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/snaps/auth/nonces", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"nonce": "pocketses-test-nonce"})
	})
	mux.HandleFunc("/api/v1/snaps/auth/sessions", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, fmt.Sprintf("cannot decode session request: %v", err), 400)
			return
		}
		for _, k := range []string{"device-session-request", "serial-assertion", "model-assertion"} {
			if !strings.Contains(req[k], "type: ") {
				http.Error(w, fmt.Sprintf("session request without %s", k), 400)
				return
			}
		}
		log.Printf("device session for a serial-request of %d bytes", len(req["device-session-request"]))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"macaroon": "pocketses-test-session"})
	})
	mux.Handle("/", proxy)
	log.Printf("store front on %s for %s", listen, upstream)
	if err := http.ListenAndServe(listen, mux); err != nil {
		fail("%v", err)
	}
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "store-front" {
		storeFront(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) != 3 || os.Args[1] != "export" {
		fail("usage: testbrand export DIR | testbrand store-front LISTEN UPSTREAM")
	}
	dir := os.Args[2]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("cannot create %s: %v", dir, err)
	}
	writePEM(filepath.Join(dir, "root.pem"), systestkeys.TestRootPrivKey)
	writePEM(filepath.Join(dir, "developer1.pem"), assertstest.DevKey)
	writeAssertion(filepath.Join(dir, "testrootorg.account"), systestkeys.TestRootAccount)
	writeAssertion(filepath.Join(dir, "testrootorg.account-key"), systestkeys.TestRootAccountKey)
	writeAssertion(filepath.Join(dir, "teststore.account-key"), systestkeys.TestStoreAccountKey)
}
