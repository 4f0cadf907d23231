//go:build msgpack115

package main

import (
	"reflect"

	"github.com/hashicorp/go-msgpack/codec"
)

// The handle as nomad/structs (v1.6.5) builds it.
func handle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.BasicHandle.TimeNotBuiltin = true
	h.MapType = reflect.TypeOf(map[string]interface{}(nil))
	h.TypeInfos = codec.NewTypeInfos([]string{"codec"})
	return h
}
