// Prints byte vectors for tests/test_rpc_msgpack.c. Two builds:
//   - Debian's go-msgpack 0.5.5 (golang-github-hashicorp-go-msgpack-dev,
//     handle_055.go): writes non-negative signed ints as uint forms and
//     sorts struct fields by name;
//   - go-msgpack v1.1.5, the version Nomad 1.6.5 pins, with Nomad's handle
//     (handle_115.go, -tags msgpack115): signed ints above 127 as int16-64,
//     fields in Go's declaration order, time.Time via MarshalBinary.
//
// Build into the build dir, never commit the binaries:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE=$PWD/build/rpcgen/cache \
//	  go build -o build/rpcgen/gen055 ./tests/rpc
//	G=build/rpcgen/gopath/src/github.com/hashicorp/go-msgpack; mkdir -p $G
//	git --git-dir=/work/.mirror/hashicorp+go-msgpack/repo archive v1.1.5 | tar -x -C $G
//	GOPATH=$PWD/build/rpcgen/gopath GO111MODULE=off GOCACHE=$PWD/build/rpcgen/cache \
//	  go build -tags msgpack115 -o build/rpcgen/gen115 ./tests/rpc
package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
)

type InternalRpcInfo struct{ Forwarded bool }

type WriteRequest struct {
	Region           string
	Namespace        string
	AuthToken        string
	IdempotencyToken string
	InternalRpcInfo
}

type NodeCpuResources struct {
	CpuShares          int64
	TotalCpuCores      uint16
	ReservableCpuCores []uint16
}

type NodeMemoryResources struct{ MemoryMB int64 }

type NodeResources struct {
	Cpu    NodeCpuResources
	Memory NodeMemoryResources
}

type DriverInfo struct {
	Attributes        map[string]string
	Detected          bool
	Healthy           bool
	HealthDescription string
	UpdateTime        time.Time
}

type Node struct {
	ID            string
	SecretID      string
	Datacenter    string
	Name          string
	Attributes    map[string]string
	NodeResources *NodeResources
	Drivers       map[string]*DriverInfo
	NodePool      string
	Status        string
}

type NodeEvent struct {
	Message     string
	Subsystem   string
	Details     map[string]string
	Timestamp   time.Time
	CreateIndex uint64
}

type NodeRegisterRequest struct {
	Node           *Node
	NodeEvent      *NodeEvent
	CreateNodePool bool
	WriteRequest
}

type Request struct {
	ServiceMethod string
	Seq           uint64
}

type Response struct {
	ServiceMethod string
	Seq           uint64
	Error         string
}

type Times struct {
	T time.Time
}

type Durations struct {
	TTL time.Duration
}

func enc(v interface{}) []byte {
	h := handle()
	var b bytes.Buffer
	if err := codec.NewEncoder(&b, h).Encode(v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func show(name string, v interface{}) {
	b := enc(v)
	fmt.Printf("static const uint8_t %s[] = {", name)
	for i, c := range b {
		if i%12 == 0 {
			fmt.Printf("\n   ")
		}
		fmt.Printf(" 0x%02x,", c)
	}
	fmt.Printf("\n};\n")
}

func main() {
	// times as struct fields, as Nomad has them (a bare time.Time given
	// to 1.1.5's Encode takes another path)
	show("v_time_zero", Times{})
	show("v_time_utc", Times{T: time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)})
	show("v_time_zone", Times{T: time.Date(2023, 11, 14, 22, 13, 20, 5, time.FixedZone("X", -90*60))})
	show("v_dur", Durations{TTL: 12 * time.Second})
	for _, n := range []int{0, 31, 32, 255, 256} {
		b := enc(strings.Repeat("x", n))
		fmt.Printf("/* str %d: % x ... (%d bytes) */\n", n, b[:min(len(b), 4)], len(b))
	}
	b := enc(strings.Repeat("x", 65536))
	fmt.Printf("/* str 65536: % x ... (%d bytes) */\n", b[:6], len(b))
	show("v_bytes", []byte{1, 2, 3})
	show("v_uints", []uint64{0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 18446744073709551615})
	show("v_ints", []int64{0, 127, 128, 255, 32767, 32768, 2147483647, 2147483648, 9223372036854775807})
	show("v_negs", []int64{-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9223372036854775808})
	show("v_float", []interface{}{1.5, float32(0.25), true, false, nil})
	show("v_nested", map[string]interface{}{"a": map[string]interface{}{"b": []interface{}{"c"}}})
	show("v_req_hdr", Request{ServiceMethod: "Status.Ping", Seq: 1})
	show("v_resp_hdr", Response{ServiceMethod: "Node.Register", Seq: 7, Error: "node secret ID does not match. Not registering node."})
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	show("v_register", NodeRegisterRequest{
		Node: &Node{
			ID: "6f1c2b5e-0000-4000-8000-000000000001", SecretID: "s",
			Datacenter: "dc1", Name: "n1",
			Attributes:    map[string]string{"kernel.name": "linux"},
			NodeResources: &NodeResources{Cpu: NodeCpuResources{CpuShares: 100, TotalCpuCores: 4}, Memory: NodeMemoryResources{MemoryMB: 64}},
			Drivers:       map[string]*DriverInfo{"exec": {Detected: true, Healthy: true, UpdateTime: ts}},
			NodePool:      "default", Status: "initializing",
		},
		NodeEvent:    &NodeEvent{Message: "Node registered", Subsystem: "Cluster", Timestamp: ts},
		WriteRequest: WriteRequest{Region: "global"},
	})
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
