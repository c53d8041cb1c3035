//! Client for snapd's REST API over its unix sockets, and the snapctl protocol.
