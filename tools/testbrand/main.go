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
// store-front also answers two things as the real store does where snapd 2.57's fakestore
// differs (both decided by asking fakestore's snap action endpoint whether it has the snap):
// GET v2/snaps/info/NAME (what snapd's `GET /v2/find?name=NAME` asks: fakestore answers 418)
// with the snap's details, or 404 when fakestore has no such snap; and a snap action that
// installs a snap fakestore does not have gets the real store's error result "name-not-found"
// (fakestore leaves the result out, so snapd says "unexpectedly empty response from the
// server" where with the real store it says "snap not found").
//
// Why a Go helper at all: the keys exist only as OpenPGP private-key packets inside snapd's Go
// source; pocketses reads PEM. Everything else (account, account-key, models) is signed by
// pocketses itself with these keys.
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
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
	mux.HandleFunc("/v2/snaps/info/", func(w http.ResponseWriter, r *http.Request) {
		snapInfo(w, r, upstream)
	})
	mux.HandleFunc("/v2/snaps/refresh", func(w http.ResponseWriter, r *http.Request) {
		snapAction(w, r, upstream)
	})
	mux.Handle("/", proxy)
	log.Printf("store front on %s for %s", listen, upstream)
	if err := http.ListenAndServe(listen, mux); err != nil {
		fail("%v", err)
	}
}

// The parts of a snap action request and reply store-front looks at.
type action struct {
	Action      string `json:"action"`
	InstanceKey string `json:"instance-key"`
	Name        string `json:"name,omitempty"`
}

type actionRequest struct {
	Context []json.RawMessage `json:"context"`
	Actions []action          `json:"actions"`
}

type actionReply struct {
	Results []map[string]interface{} `json:"results"`
}

// askUpstream posts a snap action request to fakestore and decodes its reply.
func askUpstream(upstream string, body []byte) (*actionReply, error) {
	resp, err := http.Post(strings.TrimSuffix(upstream, "/")+"/v2/snaps/refresh", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("fakestore answered %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var reply actionReply
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, fmt.Errorf("cannot decode fakestore's reply: %v", err)
	}
	return &reply, nil
}

func notFoundError(name string) map[string]interface{} {
	return map[string]interface{}{
		"code":    "name-not-found",
		"message": fmt.Sprintf("No snap named '%s' found in series '16'.", name),
	}
}

// snapInfo answers GET v2/snaps/info/NAME (store.SnapInfo) from what fakestore would install.
func snapInfo(w http.ResponseWriter, r *http.Request, upstream string) {
	name := strings.TrimPrefix(r.URL.Path, "/v2/snaps/info/")
	body, _ := json.Marshal(actionRequest{Context: []json.RawMessage{}, Actions: []action{{Action: "install", InstanceKey: "info-1", Name: name}}})
	reply, err := askUpstream(upstream, body)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if len(reply.Results) == 0 {
		log.Printf("snap info: no snap %q", name)
		w.WriteHeader(404)
		json.NewEncoder(w).Encode(map[string]interface{}{"error-list": []interface{}{notFoundError(name)}})
		return
	}
	snap, _ := reply.Results[0]["snap"].(map[string]interface{})
	entry := map[string]interface{}{}
	for k, v := range snap {
		entry[k] = v
	}
	entry["channel"] = map[string]interface{}{
		"architecture": "amd64", "name": "stable", "risk": "stable", "track": "latest",
		"released-at": "2026-01-01T00:00:00Z",
	}
	log.Printf("snap info: %q", name)
	json.NewEncoder(w).Encode(map[string]interface{}{
		"name": name, "snap-id": snap["snap-id"], "snap": snap,
		"channel-map": []interface{}{entry},
	})
}

// snapAction passes a snap action to fakestore and adds the real store's "name-not-found"
// error result for each install of a snap fakestore left out.
func snapAction(w http.ResponseWriter, r *http.Request, upstream string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var req actionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, fmt.Sprintf("cannot decode request body: %v", err), 400)
		return
	}
	reply, err := askUpstream(upstream, body)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	answered := map[string]bool{}
	for _, res := range reply.Results {
		if k, ok := res["instance-key"].(string); ok {
			answered[k] = true
		}
	}
	for _, a := range req.Actions {
		if a.Action == "install" && !answered[a.InstanceKey] {
			log.Printf("snap action: install of unknown snap %q", a.Name)
			reply.Results = append(reply.Results, map[string]interface{}{
				"result": "error", "instance-key": a.InstanceKey, "name": a.Name,
				"error": notFoundError(a.Name),
			})
		}
	}
	if reply.Results == nil {
		reply.Results = []map[string]interface{}{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(reply)
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
