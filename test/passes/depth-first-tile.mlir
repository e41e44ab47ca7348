// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=512" | %filecheck %s --check-prefixes=CHECK,ROWS4
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=512" | %filecheck %s --check-prefix=NOSCALAR
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=450" | %filecheck %s --check-prefixes=CHECK,ROWS2
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=4096 rows=1" | %filecheck %s --check-prefixes=CHECK,ROWS1
// RUN: not %tinyattn-opt %s --depth-first-tile="l1-bytes=111" 2>&1 | %filecheck %s --check-prefix=SMALL
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=383" 2>&1 | %filecheck %s --check-prefix=FALLBACK
// RUN: not %tinyattn-opt %s --depth-first-tile="rows=3" 2>&1 | %filecheck %s --check-prefix=DIVIDE
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=192 dma=false" | %filecheck %s --check-prefix=INPLACE
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=512 pack-weights=true" | %filecheck %s --check-prefix=PACKED
// RUN: %tinyattn-opt %s --depth-first-tile --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l1-bytes=512" --lower-dma --print-op-generic | %mlir-opt --verify-each | %filecheck %s --check-prefix=LOWERED
// REQUIRES: mlir

// S=4 E=4 P=2 H=2, f32: the L1 working set is 320 bytes of X, bo, K, V and the head's weight
// slices, plus 48 bytes per query row (Q, scores, context, output rows; each buffer 16-aligned):
// 512 bytes for 4-row blocks, 416 for 2, 384 for 1.
func.func @main(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %w = arith.constant dense<0.5> : tensor<2x4x2xf32>
  %b = arith.constant dense<0.1> : tensor<2x2xf32>
  %wo = arith.constant dense<0.25> : tensor<2x2x4xf32>
  %bo = arith.constant dense<0.0> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.707 : f32} : (tensor<4x4xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %r = tinyattn.relu %a : (tensor<4x4xf32>) -> tensor<4x4xf32>
  func.return %r : tensor<4x4xf32>
}

// CHECK-LABEL: func.func @main
// CHECK:       %[[X:.*]] = bufferization.to_buffer %x : tensor<4x4xf32> to memref<4x4xf32>
// CHECK:       %[[WQ:.*]] = bufferization.to_buffer %w : tensor<2x4x2xf32> to memref<2x4x2xf32>
// CHECK:       %a = memref.alloc() {alignment = 16 : i64, tinyattn.dma_bytes = 576 : i64} : memref<4x4xf32>
// CHECK-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xf32, "L1">
// CHECK:       %k_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x2xf32, "L1">
// ROWS4:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xf32, "L1">
// ROWS2:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xf32, "L1">
// ROWS1:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<1x4xf32, "L1">
// X and bo go to L1 once.
// CHECK:       %[[TX:.*]] = dma.start %[[X]], %x_l1 : memref<4x4xf32>, memref<4x4xf32, "L1">
// CHECK:       dma.wait %[[TX]]
// Per head: the head's weight slices to L1, then K and V of all rows.
// CHECK:       scf.for %[[HEAD:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:         %[[WQH:.*]] = memref.subview %[[WQ]][%[[HEAD]], 0, 0] [1, 4, 2] [1, 1, 1] : memref<2x4x2xf32> to memref<4x2xf32, strided<[2, 1], offset: ?>>
// CHECK:         dma.start %[[WQH]], %wq_l1
// CHECK:         kernel.matmul %x_l1, %wk_l1 bias %bk_l1 into %k_l1 : memref<4x4xf32, "L1">, memref<4x2xf32, "L1"> bias memref<2xf32, "L1"> into memref<4x2xf32, "L1">
// CHECK-NEXT:    kernel.matmul %x_l1, %wv_l1 bias %bv_l1 into %v_l1
// Per block of query rows: Q, scores, softmax, context, then the output rows.
// CHECK:         scf.for %[[BLOCK:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// ROWS2:           memref.subview %x_l1[%{{.*}}, 0] [2, 4] [1, 1] : memref<4x4xf32, "L1"> to memref<2x4xf32, strided<[4, 1], offset: ?>, "L1">
// CHECK:           kernel.matmul %{{.*}}, %wq_l1 bias %bq_l1 into %q_l1
// CHECK-NEXT:      kernel.matmul %q_l1, %k_l1 into %scores_l1 {transpose_rhs, scale = 7.070000e-01 : f32}
// CHECK-NEXT:      kernel.softmax %scores_l1 into %scores_l1
// CHECK-NEXT:      kernel.matmul %scores_l1, %v_l1 into %context_l1
// The first head starts the output from bo; the others add to the rows already in L2.
// CHECK:           %[[FIRST:.*]] = arith.cmpi eq, %[[HEAD]], %{{.*}} : index
// CHECK-NEXT:      scf.if %[[FIRST]] {
// CHECK-NEXT:        kernel.matmul %context_l1, %wo_l1 bias %bo_l1 into %y_l1
// CHECK:           } else {
// CHECK:             dma.start %{{.*}}, %y_l1
// CHECK:             kernel.matmul %context_l1, %wo_l1 acc %y_l1 into %y_l1
// CHECK:           }
// CHECK:           dma.start %y_l1, %{{.*}} : memref<{{[0-9]}}x4xf32, "L1">, memref<{{[0-9]}}x4xf32, strided<[4, 1], offset: ?>>
// CHECK:       %[[A:.*]] = bufferization.to_tensor %a : memref<4x4xf32> to tensor<4x4xf32>
// CHECK:       tinyattn.relu %[[A]]
// CHECK-NOT:   tinyattn.mhsa

// Tiles are computed by kernel ops: nothing scalar is emitted at this level.
// NOSCALAR-NOT: {{memref.load|memref.store|arith.mulf|arith.addf|math.exp}}

// Below what depth-first needs, but not below what layer-wise tiling does: that attention is
// tiled layer by layer, and a remark says so. Below both, the refusal states depth-first's need.
// SMALL: tinyattn-opt: error: depth-first-tile: the attention (S=4 E=4 P=2) needs at least 384 bytes of L1 with 1-row blocks, but l1-bytes=111
// FALLBACK: remark: depth-first-tile: the attention (S=4 E=4 P=2) needs at least 384 bytes of L1 with 1-row blocks, but l1-bytes=383 (attention #0); scheduled by layerwise-tile instead, in 4-row blocks
// FALLBACK-NOT: tinyattn.mhsa
// FALLBACK: kernel.matmul
// DIVIDE: tinyattn-opt: error: depth-first-tile: rows=3 must divide the sequence length S=4

// On one memory level X, the weights and the output rows are used in place: only K, V and the
// block's Q, scores and context are scratch buffers (32 + 32 + 32 + 64 + 32 = 192 bytes for 4 rows).
// INPLACE-NOT: %x_l1
// INPLACE:     %k_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x2xf32, "L1">
// INPLACE:     %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xf32, "L1">
// INPLACE-NEXT: %context_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x2xf32, "L1">
// INPLACE-NOT: dma.start
// INPLACE:     scf.if
// INPLACE:       kernel.matmul %context_l1, %{{.*}} bias %{{.*}} into %{{.*}} : memref<4x2xf32, "L1">, memref<2x4xf32, strided<[4, 1], offset: ?>> bias memref<4xf32> into memref<4x4xf32, strided<[4, 1], offset: ?>>
// INPLACE-NOT: dma.start
// INPLACE:     bufferization.to_tensor

// Packed weights: each projection weight rearranged offline to [H, P, E] (one constant for the
// three uses of %w), Wo to [H, E, P]; every matmul reads its rhs by rows; V is computed
// transposed, [P, S], so that A·V reads it by rows too. The same bytes in L1.
// PACKED:      %[[WT:.*]] = arith.constant dense<5.000000e-01> : tensor<2x2x4xf32>
// PACKED-NEXT: bufferization.to_buffer %[[WT]] : tensor<2x2x4xf32> to memref<2x2x4xf32>
// PACKED:      %[[WOT:.*]] = arith.constant dense<2.500000e-01> : tensor<2x4x2xf32>
// PACKED:      %wq_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xf32, "L1">
// PACKED:      %v_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xf32, "L1">
// PACKED:      kernel.matmul %x_l1, %wk_l1 bias %bk_l1 into %k_l1 {transpose_rhs}
// PACKED-NEXT: kernel.matmul %x_l1, %wv_l1 bias %bv_l1 into %v_l1 {transpose_rhs, transpose_out} : memref<4x4xf32, "L1">, memref<2x4xf32, "L1"> bias memref<2xf32, "L1"> into memref<2x4xf32, "L1">
// PACKED:      kernel.matmul %scores_l1, %v_l1 into %context_l1 {transpose_rhs}
// PACKED:      kernel.matmul %context_l1, %wo_l1 bias %bo_l1 into %y_l1 {transpose_rhs}

// LOWERED: func.func private @ta_dma_start_2d(index, index, index, index, index, index) -> i32
// LOWERED-LABEL: func.func @main(%{{.*}}: memref<4x4xf32>, %{{.*}}: memref<4x4xf32>, %{{.*}}: memref<512xi8>, %{{.*}}: memref<{{[0-9]+}}xi8>)
// LOWERED: func.call @ta_dma_start_2d
