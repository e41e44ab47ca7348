// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=208" | %filecheck %s --check-prefixes=CHECK,ROWS4
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=207" | %filecheck %s --check-prefixes=CHECK,ROWS2
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=208" | %filecheck %s --check-prefix=NOSCALAR
// RUN: not %tinyattn-opt %s --layerwise-tile="l1-bytes=111" 2>&1 | %filecheck %s --check-prefix=SMALL
// RUN: not %tinyattn-opt %s --layerwise-tile="rows=3" 2>&1 | %filecheck %s --check-prefix=DIVIDE
// RUN: %tinyattn-opt %s --layerwise-tile="dma=false" | %filecheck %s --check-prefix=INPLACE
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=208" --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l1-bytes=208" --lower-dma --print-op-generic | %mlir-opt --verify-each | %filecheck %s --check-prefix=LOWERED
// REQUIRES: mlir

// S=4 E=4 P=2 H=2, f32. Each layer has its own L1 tiles; the largest layer is the output
// projection: Wo [4, 4] and bo whole, a block of context rows [R, 4] and of output rows [R, 4]
// (each buffer 16-aligned): 208 bytes for 4-row blocks, 144 for 2, 112 for 1.
func.func @main(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x2xf32>
  %b = arith.constant dense<0.1> : tensor<2x2xf32>
  %wo = arith.constant dense<0.25> : tensor<2x2x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.707 : f32} : (tensor<4x4xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  func.return %a : tensor<4x4xf32>
}

// Q, K, the score map, V and the context materialize in L2; each layer has its L1 tiles.
// CHECK-LABEL: func.func @main
// CHECK:       %q = memref.alloc() {alignment = 16 : i64, tinyattn.dma_bytes = {{[0-9]+}} : i64} : memref<2x4x2xf32>
// ROWS4-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xf32, "L1">
// ROWS2-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xf32, "L1">
// CHECK:       scf.for %[[HEAD:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:         dma.start %{{.*}}, %w_l1 : memref<4x2xf32, strided<[2, 1], offset: ?>>, memref<4x2xf32, "L1">
// CHECK:         scf.for
// CHECK:           dma.start %{{.*}}, %x_l1
// CHECK:           kernel.matmul %x_l1, %w_l1 bias %b_l1 into %y_l1
// CHECK:           dma.start %y_l1, %{{.*}} : memref<{{[0-9]}}x2xf32, "L1">, memref<{{[0-9]}}x2xf32, strided<[2, 1], offset: ?>>
// CHECK:       %k = memref.alloc() {alignment = 16 : i64} : memref<2x4x2xf32>
// CHECK:       %scores = memref.alloc() {alignment = 16 : i64} : memref<2x4x4xf32>
// The scores of a block of Q rows against the head's whole K.
// CHECK:       scf.for
// CHECK:         dma.start %{{.*}}, %right_l1 : memref<4x2xf32, strided<[2, 1], offset: ?>>, memref<4x2xf32, "L1">
// CHECK:         scf.for
// CHECK:           dma.start %{{.*}}, %left_l1
// CHECK:           kernel.matmul %left_l1, %right_l1 into %a_l1 {transpose_rhs, scale = 7.070000e-01 : f32}
// CHECK:           dma.start %a_l1, %{{.*}}
// Softmax is a layer of its own: score rows in, normalized, back out.
// CHECK:       scf.for
// CHECK:         scf.for
// CHECK:           dma.start %{{.*}}, %a_l1_1
// CHECK:           kernel.softmax %a_l1_1 into %a_l1_1
// CHECK:           dma.start %a_l1_1, %{{.*}}
// CHECK:       %v = memref.alloc() {alignment = 16 : i64} : memref<2x4x2xf32>
// The context is written head-interleaved, a 2-D strided transfer per block.
// CHECK:       %context = memref.alloc() {alignment = 16 : i64} : memref<4x2x2xf32>
// CHECK:       dma.start %c_l1, %{{.*}} : memref<{{[0-9]}}x2xf32, "L1">, memref<{{[0-9]}}x2xf32, strided<[4, 1], offset: ?>>
// CHECK:       %a = memref.alloc() {alignment = 16 : i64} : memref<4x4xf32>
// CHECK:       dma.start %{{.*}}, %wo_l1 : memref<4x4xf32>, memref<4x4xf32, "L1">
// CHECK:       bufferization.to_tensor %a
// CHECK-NOT:   tinyattn.mhsa

// Layers are computed by kernel ops: nothing scalar is emitted at this level.
// NOSCALAR-NOT: {{memref.load|memref.store|arith.mulf|arith.addf|math.exp}}

// SMALL: tinyattn-opt: error: layerwise-tile: the attention (S=4 E=4 P=2) needs at least 112 bytes of L1 with 1-row blocks, but l1-bytes=111
// DIVIDE: tinyattn-opt: error: layerwise-tile: rows=3 must divide the sequence length S=4

// On one memory level the layers compute on the L2 data in place: no L1 tile, no transfer.
// INPLACE-NOT: "L1"
// INPLACE-NOT: dma.start
// INPLACE:     %q = memref.alloc()
// INPLACE-NOT: "L1"
// INPLACE-NOT: dma.start
// INPLACE:     bufferization.to_tensor

// LOWERED: func.func private @ta_dma_start_2d(index, index, index, index, index, index) -> i32
// LOWERED-LABEL: func.func @main(%{{.*}}: memref<4x4xf32>, %{{.*}}: memref<4x4xf32>, %{{.*}}: memref<208xi8>, %{{.*}}: memref<{{[0-9]+}}xi8>)
