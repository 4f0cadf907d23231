//go:build !msgpack115

package main

import "github.com/hashicorp/go-msgpack/codec"

// Nomad's settings that 0.5.5 has: raw strings, no bin/str8.
func handle() *codec.MsgpackHandle {
	return &codec.MsgpackHandle{RawToString: true}
}
