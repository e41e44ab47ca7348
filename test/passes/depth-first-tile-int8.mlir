// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=480" | %filecheck %s --check-prefixes=CHECK,ROWS8
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=479" | %filecheck %s --check-prefixes=CHECK,ROWS4
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=320" | %filecheck %s --check-prefixes=CHECK,ROWS2
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=480" | %filecheck %s --check-prefix=NOSCALAR
// RUN: not %tinyattn-opt %s --depth-first-tile="l1-bytes=63" 2>&1 | %filecheck %s --check-prefix=SMALL
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=160 dma=false" | %filecheck %s --check-prefix=INPLACE
// RUN: %tinyattn-opt %s --depth-first-tile="l1-bytes=368" --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l1-bytes=368" --lower-dma --print-op-generic | %mlir-opt %upstream-flags-32 | %filecheck %s --check-prefix=LOWERED
// REQUIRES: mlir

// S=8 E=4 P=2 H=2, int8: ui8 input, i8 weights, i32 biases, i8 result, integer softmax. Tiles
// hold their own element type, each buffer 16-aligned: X [8, 4] i8 (32 bytes), bo, the head's
// weight slices, K, V (16 each) and the softmax's i32 scratch row (32) make 224 bytes; per block
// of R rows Q, context [R, 2] i8, scores [R, 8] i8, the output rows [R, 4] i8 and the i32
// partial sums [R, 4] (16 R bytes): 480 bytes for 8 rows, 368 for 4, 320 for 2, 304 for 1.
func.func @main(%x: tensor<8x4xui8>) -> tensor<8x4xi8> {
  %w = arith.constant dense<[[[1, -2], [3, -4], [5, 6], [-7, 8]], [[2, 1], [-1, 3], [4, -2], [0, 5]]]> : tensor<2x4x2xi8>
  %b = arith.constant dense<[[100, -200], [50, 25]]> : tensor<2x2xi32>
  %wo = arith.constant dense<[[[1, 2, -3, 4], [5, -6, 7, 8]], [[-1, 2, 3, -4], [2, 2, -2, 1]]]> : tensor<2x2x4xi8>
  %bo = arith.constant dense<[10, -20, 30, -40]> : tensor<4xi32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, q_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, k_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, v_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, score_requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5, 6, 7, 8], add = 0, shift = 3>, context_requant = #tinyattn.requant<mul = 1, add = 0, shift = 6>, out_requant = #tinyattn.requant<mul = [3, 5, 7, 9], add = [0, 1, 2, 3], shift = 5>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<8x4xui8>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x2x4xi8>, tensor<4xi32>) -> tensor<8x4xi8>
  func.return %a : tensor<8x4xi8>
}

// The ui8 input is seen as the i8 it is stored as.
// CHECK-LABEL: func.func @main
// CHECK:       %[[XU:.*]] = bufferization.to_buffer %x : tensor<8x4xui8> to memref<8x4xui8>
// CHECK-NEXT:  %[[X:.*]] = builtin.unrealized_conversion_cast %[[XU]] : memref<8x4xui8> to memref<8x4xi8>
// CHECK:       %a = memref.alloc() {alignment = 16 : i64, tinyattn.dma_bytes = {{[0-9]+}} : i64} : memref<8x4xi8>
// CHECK-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x4xi8, "L1">
// CHECK-NEXT:  %bo_l1 = memref.alloc() {alignment = 16 : i64} : memref<4xi32, "L1">
// CHECK-NEXT:  %wq_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x2xi8, "L1">
// CHECK-NEXT:  %bq_l1 = memref.alloc() {alignment = 16 : i64} : memref<2xi32, "L1">
// CHECK:       %k_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x2xi8, "L1">
// ROWS8:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x8xi8, "L1">
// ROWS4:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x8xi8, "L1">
// ROWS2:       %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x8xi8, "L1">
// ROWS8:       %y_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x4xi32, "L1">
// ROWS8-NEXT:  %out_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x4xi8, "L1">
// ROWS4:       %y_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xi32, "L1">
// ROWS4-NEXT:  %out_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xi8, "L1">
// ROWS2:       %y_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xi32, "L1">
// ROWS2-NEXT:  %out_l1 = memref.alloc() {alignment = 16 : i64} : memref<2x4xi8, "L1">
// CHECK-NEXT:  %row_l1 = memref.alloc() {alignment = 16 : i64} : memref<8xi32, "L1">
// CHECK:       dma.start %[[X]], %x_l1 : memref<8x4xi8>, memref<8x4xi8, "L1">
// The partial sums over heads are i32 rows in L2.
// CHECK:       %acc = memref.alloc() {alignment = 16 : i64} : memref<8x4xi32>
// Per head, K and V: the ui8 X (operand 0) times the i8 weights plus the i32 bias, requantized
// into the i8 tiles.
// CHECK:       scf.for %[[HEAD:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:         dma.start %{{.*}}, %wq_l1 : memref<4x2xi8, strided<[2, 1], offset: ?>>, memref<4x2xi8, "L1">
// CHECK:         kernel.matmul %x_l1, %wk_l1 bias %bk_l1 into %k_l1 {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>} : memref<8x4xi8, "L1">, memref<4x2xi8, "L1"> bias memref<2xi32, "L1"> into memref<8x2xi8, "L1">
// CHECK-NEXT:    kernel.matmul %x_l1, %wv_l1 bias %bv_l1 into %v_l1 {unsigned = array<i64: 0>,
// Per block: the scores requantized per key (column), the integer softmax in place through its
// i32 row (its result, operand 2, unsigned), the ui8 probabilities (operand 0) into the context.
// CHECK:         scf.for
// CHECK:           kernel.matmul %{{.*}}, %wq_l1 bias %bq_l1 into %q_l1 {unsigned = array<i64: 0>,
// CHECK-NEXT:      kernel.matmul %q_l1, %k_l1 into %scores_l1 {transpose_rhs, requant = #tinyattn.requant<mul = [1, 2, 3, 4, 5, 6, 7, 8], add = 0, shift = 3>}
// CHECK-NEXT:      kernel.softmax %scores_l1 scratch %row_l1 into %scores_l1 {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>}
// CHECK-NEXT:      kernel.matmul %scores_l1, %v_l1 into %context_l1 {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 6>}
// The last head adds its share to the i32 sums of the rows and narrows them into the output
// rows; the first starts from bo, the others from the sums in L2.
// CHECK:           %[[LAST:.*]] = arith.cmpi eq, %[[HEAD]], %{{.*}} : index
// CHECK-NEXT:      scf.if %[[LAST]] {
// CHECK-NEXT:        dma.start %{{.*}}, %y_l1 : memref<{{[0-9]}}x4xi32, strided<[4, 1], offset: ?>>, memref<{{[0-9]}}x4xi32, "L1">
// CHECK:             kernel.matmul %context_l1, %wo_l1 acc %y_l1 into %out_l1 {requant = #tinyattn.requant<mul = [3, 5, 7, 9], add = [0, 1, 2, 3], shift = 5>} : memref<{{[0-9]}}x2xi8, "L1">, memref<2x4xi8, "L1"> acc memref<{{[0-9]}}x4xi32, "L1"> into memref<{{[0-9]}}x4xi8, "L1">
// CHECK-NEXT:        dma.start %out_l1, %{{.*}} : memref<{{[0-9]}}x4xi8, "L1">, memref<{{[0-9]}}x4xi8, strided<[4, 1], offset: ?>>
// CHECK:           } else {
// CHECK:             %[[FIRST:.*]] = arith.cmpi eq, %[[HEAD]], %{{.*}} : index
// CHECK-NEXT:        scf.if %[[FIRST]] {
// CHECK-NEXT:          kernel.matmul %context_l1, %wo_l1 bias %bo_l1 into %y_l1 :
// CHECK:             } else {
// CHECK-NEXT:          dma.start %{{.*}}, %y_l1
// CHECK:               kernel.matmul %context_l1, %wo_l1 acc %y_l1 into %y_l1 :
// CHECK:           dma.start %y_l1, %{{.*}} : memref<{{[0-9]}}x4xi32, "L1">, memref<{{[0-9]}}x4xi32, strided<[4, 1], offset: ?>>
// CHECK:       %[[A:.*]] = bufferization.to_tensor %a : memref<8x4xi8> to tensor<8x4xi8>
// CHECK-NEXT:  func.return %[[A]]

// NOSCALAR-NOT: {{memref.load|memref.store|arith.(muli|addi|shrsi) .*: i32}}

// SMALL: tinyattn-opt: error: depth-first-tile: the attention (S=8 E=4 P=2) needs at least 304 bytes of L1 with 1-row blocks, but l1-bytes=63

// On one memory level only K, V, the block's Q, scores, context and the softmax row are scratch
// (16 + 16 + 16 + 64 + 16 + 32 = 160 bytes for 8 rows); the heads accumulate into the i32 rows
// in L2 and the last writes the output rows, in place.
// INPLACE-NOT: %x_l1
// INPLACE:     %k_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x2xi8, "L1">
// INPLACE:     %scores_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x8xi8, "L1">
// INPLACE:     %row_l1 = memref.alloc() {alignment = 16 : i64} : memref<8xi32, "L1">
// INPLACE-NOT: dma.start
// INPLACE:     %acc = memref.alloc() {alignment = 16 : i64} : memref<8x4xi32>
// INPLACE:     %[[ACC_ROWS:.*]] = memref.subview %acc
// INPLACE:     scf.if
// INPLACE:       kernel.matmul %context_l1, %{{.*}} acc %[[ACC_ROWS]] into %{{.*}} {{.*}} into memref<8x4xi8, strided<[4, 1], offset: ?>>
// INPLACE:     } else {
// INPLACE:       kernel.matmul %context_l1, %{{.*}} into %[[ACC_ROWS]]
// INPLACE-NOT: dma.start
// INPLACE:     bufferization.to_tensor

// Through the upstream pipeline: the per-channel requantizations are constant tables, the casts
// are gone, the L1 arena holds the planned 368 bytes, L2 the result and the i32 partial sums
// (32 + 128 bytes).
// LOWERED:     llvm.mlir.global private constant @requant_mul{{.*}}(dense<[1, 2, 3, 4, 5, 6, 7, 8]> : tensor<8xi32>)
// LOWERED:     llvm.mlir.global private constant @requant_offset{{.*}}(dense<[16, 17, 18, 19]> : tensor<4xi32>)
// LOWERED-NOT: unrealized_conversion_cast
// LOWERED:     llvm.func @main(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) attributes {tinyattn.arena_bytes = {L1 = 368 : i64, L2 = 160 : i64}
// LOWERED-NOT: unrealized_conversion_cast
// LOWERED:     llvm.call @ta_dma_start_2d
