package main

import (
	"github.com/snapcore/snapd/asserts"
	"github.com/snapcore/snapd/asserts/sysdb"
)

// sysdbTrusted is snapd's compiled-in trusted set (Canonical's root account-key and account).
func sysdbTrusted() []asserts.Assertion { return sysdb.Trusted() }

// sysdbPredefined is snapd's predefined generic account, models key and generic-classic model.
func sysdbPredefined() []asserts.Assertion { return sysdb.Generic() }
