// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --convert-tinyattn-to-loops %s | %filecheck %s

func.func @main(%x: tensor<1x3x4xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x2xf32>
  %b = arith.constant dense<0.1> : tensor<2x2xf32>
  %wo = arith.constant dense<0.25> : tensor<2x2x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %w1 = arith.constant dense<1.0> : tensor<4x2xf32>
  %x2 = tinyattn.reshape %x : (tensor<1x3x4xf32>) -> tensor<3x4xf32>
  %a = tinyattn.mhsa %x2 q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.707 : f32} : (tensor<3x4xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %r = tinyattn.add %x2, %a : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %g = tinyattn.gelu %r : (tensor<3x4xf32>) -> tensor<3x4xf32>
  %m = tinyattn.mean %g {axis = 0 : i64} : (tensor<3x4xf32>) -> tensor<4xf32>
  %y = tinyattn.linear %m, %w1 : (tensor<4xf32>, tensor<4x2xf32>) -> tensor<2xf32>
  %o = tinyattn.reshape %y : (tensor<2xf32>) -> tensor<1x2xf32>
  func.return %o : tensor<1x2xf32>
}

// Weights become read-only globals named after them.
// CHECK:      "memref.global"() <{sym_name = "w", type = memref<2x4x2xf32>, initial_value = dense<5.000000e-01> : tensor<2x4x2xf32>, sym_visibility = "private", constant, alignment = 16 : i64}>
// CHECK:      "memref.global"() <{sym_name = "w1", type = memref<4x2xf32>

// Destination passing: inputs then outputs, no results.
// CHECK-LABEL: func.func @main(%x: memref<1x3x4xf32>, %out: memref<1x2xf32>) {
// CHECK:      %w = memref.get_global @w : memref<2x4x2xf32>
// CHECK:      %[[X:.*]] = memref.reinterpret_cast %x to offset: [0], sizes: [3, 4], strides: [4, 1] : memref<1x3x4xf32> to memref<3x4xf32>

// Attention materializes Q and K [H, S, P], the score map [H, S, S], V, and the context [S, H, P].
// CHECK:      %a = memref.alloc() {alignment = 16 : i64} : memref<3x4xf32>
// CHECK-NEXT: %[[SCORES:.*]] = memref.alloc() {alignment = 16 : i64} : memref<2x3x3xf32>
// CHECK-NEXT: %[[Q:.*]] = memref.alloc() {alignment = 16 : i64} : memref<2x3x2xf32>
// CHECK:      %[[K:.*]] = memref.alloc() {alignment = 16 : i64} : memref<2x3x2xf32>
// CHECK:        memref.load %[[Q]]
// CHECK-NEXT:   memref.load %[[K]]
// CHECK:        scf.yield
// CHECK:      %[[SCALED:.*]] = arith.mulf
// CHECK-NEXT: memref.store %[[SCALED]], %[[SCORES]]
// CHECK:      memref.dealloc %[[K]] : memref<2x3x2xf32>
// CHECK-NEXT: memref.dealloc %[[Q]] : memref<2x3x2xf32>
// CHECK:      math.exp
// CHECK:      %[[V:.*]] = memref.alloc() {alignment = 16 : i64} : memref<2x3x2xf32>
// CHECK:      %[[CTX:.*]] = memref.alloc() {alignment = 16 : i64} : memref<3x2x2xf32>
// CHECK:      memref.store {{.*}}, %[[CTX]][%[[ROW:.*]], %[[HEAD:.*]], %[[COL:.*]]] : memref<3x2x2xf32>
// CHECK:      memref.dealloc %[[V]]
// CHECK-NEXT: memref.dealloc %[[SCORES]]
// CHECK:      memref.reinterpret_cast %[[CTX]] to offset: [0], sizes: [3, 4], strides: [4, 1] : memref<3x2x2xf32> to memref<3x4xf32>
// CHECK:      memref.reinterpret_cast %wo to offset: [0], sizes: [4, 4], strides: [4, 1] : memref<2x2x4xf32> to memref<4x4xf32>
// CHECK:      memref.store {{.*}}, %a[{{.*}}] : memref<3x4xf32>
// CHECK:      memref.dealloc %[[CTX]]

// The residual, GELU and the pooling each get a buffer; the head writes into the output.
// CHECK:      %r = memref.alloc() {alignment = 16 : i64} : memref<3x4xf32>
// CHECK:      arith.addf
// CHECK:      memref.dealloc %a
// CHECK:      %g = memref.alloc() {alignment = 16 : i64} : memref<3x4xf32>
// CHECK:      math.erf
// CHECK:      %m = memref.alloc() {alignment = 16 : i64} : memref<4xf32>
// CHECK:      memref.reinterpret_cast %out to offset: [0], sizes: [2], strides: [1] : memref<1x2xf32> to memref<2xf32>
// CHECK:      memref.dealloc %m
// CHECK-NEXT: func.return
// CHECK-NOT:  tinyattn.
// CHECK:      // -----

// -----

func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  func.return %x : tensor<4x8xf32>
}
// CHECK: result 0 of @main is not computed by a tinyattn op
