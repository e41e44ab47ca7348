// RUN: %tinyattn-opt --split-input-file --plan-memory %s | %filecheck %s
// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --plan-memory="l2-bytes=1000" %s | %filecheck %s --check-prefix=SMALL

// %a and %b are live together; %c starts after %a is freed and takes its place.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%arena_l2: memref<1536xi8>)
// CHECK-SAME: attributes {tinyattn.arena_bytes = {L2 = 1536 : i64}, tinyattn.live_peak_bytes = 1536 : i64}
// CHECK-NEXT: %{{.*}} = arith.constant 0 : index
// CHECK-NEXT: %a = memref.view %arena_l2[%{{.*}}][] : memref<1536xi8> to memref<16x16xf32>
// CHECK-NEXT: %{{.*}} = arith.constant 1024 : index
// CHECK-NEXT: %b = memref.view %arena_l2[%{{.*}}][] : memref<1536xi8> to memref<8x16xf32>
// CHECK: %{{.*}} = arith.constant 0 : index
// CHECK-NEXT: %c = memref.view %arena_l2[%{{.*}}][] : memref<1536xi8> to memref<4x16xf32>
// CHECK-NOT: memref.dealloc
// CHECK-NOT: memref.alloc
func.func @chain() {
  %a = memref.alloc() {alignment = 16 : i64} : memref<16x16xf32>
  %b = memref.alloc() {alignment = 16 : i64} : memref<8x16xf32>
  "test.op"(%a, %b) : (memref<16x16xf32>, memref<8x16xf32>) -> ()
  memref.dealloc %a : memref<16x16xf32>
  %c = memref.alloc() {alignment = 16 : i64} : memref<4x16xf32>
  "test.op"(%b, %c) : (memref<8x16xf32>, memref<4x16xf32>) -> ()
  memref.dealloc %b : memref<8x16xf32>
  memref.dealloc %c : memref<4x16xf32>
  func.return
}
// SMALL: @chain needs 1536 bytes of L2 for its activations, but L2 has 1000 bytes

// -----

// Buffers in L1 get an arena of their own, placed before the L2 one.
// CHECK-LABEL: func.func @levels
// CHECK-SAME: (%x: memref<4xf32>, %arena_l1: memref<16xi8>, %arena_l2: memref<32xi8>)
// CHECK: memref.view %arena_l1[%{{.*}}][] : memref<16xi8> to memref<4xf32>
// CHECK: memref.view %arena_l2[%{{.*}}][] : memref<32xi8> to memref<8xf32>
func.func @levels(%x: memref<4xf32>) {
  %t = memref.alloc() : memref<4xf32, "L1">
  %u = memref.alloc() : memref<8xf32>
  "test.op"(%x, %t, %u) : (memref<4xf32>, memref<4xf32, "L1">, memref<8xf32>) -> ()
  func.return
}
// SMALL: tinyattn.arena_bytes = {L1 = 16 : i64, L2 = 32 : i64}
