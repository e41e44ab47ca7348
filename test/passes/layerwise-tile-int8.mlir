// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=128" | %filecheck %s --check-prefixes=CHECK,ROWS8
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=127" | %filecheck %s --check-prefixes=CHECK,ROWS4
// RUN: not %tinyattn-opt %s --layerwise-tile="l1-bytes=63" 2>&1 | %filecheck %s --check-prefix=SMALL
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=32 dma=false" | %filecheck %s --check-prefix=INPLACE
// RUN: not %tinyattn-opt %s --layerwise-tile="l1-bytes=31 dma=false" 2>&1 | %filecheck %s --check-prefix=SMALL-INPLACE
// RUN: %tinyattn-opt %s --layerwise-tile="l1-bytes=128" --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l1-bytes=128" --lower-dma --print-op-generic | %mlir-opt %upstream-flags-32 | %filecheck %s --check-prefix=LOWERED
// REQUIRES: mlir

// S=8 E=4 P=2 H=2, int8 fused attention: ui8 input and result, i8 weights, i32 biases, integer
// softmax. Q K (as QK = X Wqk + bqk), V, the scores and the context are i8 in L2. The largest
// layer is the scores: X [8, 4] i8 whole (32 bytes), a block of QK rows [R, 4] and of score
// rows [R, 8] (each buffer 16-aligned): 128 bytes for 8-row blocks, 80 for 4, 64 for 2 and 1.
func.func @main(%x: tensor<8x4xui8>) -> tensor<8x4xui8> {
  %wqk = arith.constant dense<[[[1, -2, 3, 0], [3, -4, 1, 2], [5, 6, -1, 1], [-7, 8, 2, -3]], [[2, 1, 0, 1], [-1, 3, 2, 2], [4, -2, 1, -1], [0, 5, -3, 2]]]> : tensor<2x4x4xi8>
  %bqk = arith.constant dense<[[100, -200, 7, 9], [50, 25, -3, 0]]> : tensor<2x4xi32>
  %wv = arith.constant dense<[[[1, -2], [3, -4], [5, 6], [-7, 8]], [[2, 1], [-1, 3], [4, -2], [0, 5]]]> : tensor<2x4x2xi8>
  %bv = arith.constant dense<[[100, -200], [50, 25]]> : tensor<2x2xi32>
  %wo = arith.constant dense<[[[1, 2, -3, 4], [5, -6, 7, 8]], [[-1, 2, 3, -4], [2, 2, -2, 1]]]> : tensor<2x2x4xi8>
  %bo = arith.constant dense<[10, -20, 30, -40]> : tensor<4xi32>
  %a = tinyattn.fused_mhsa %x qk(%wqk, %bqk) v(%wv, %bv) o(%wo, %bo) {num_heads = 2 : i64, qk_requant = #tinyattn.requant<mul = 1, add = 0, shift = 5>, v_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, score_requant = #tinyattn.requant<mul = 1, add = 0, shift = 6>, context_requant = #tinyattn.requant<mul = [3, 5], add = [1, -1], shift = 6>, out_requant = #tinyattn.requant<mul = 3, add = 100, shift = 5>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<8x4xui8>, tensor<2x4x4xi8>, tensor<2x4xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x2x4xi8>, tensor<4xi32>) -> tensor<8x4xui8>
  func.return %a : tensor<8x4xui8>
}

// CHECK-LABEL: func.func @main
// CHECK:       %[[XU:.*]] = bufferization.to_buffer %x : tensor<8x4xui8> to memref<8x4xui8>
// CHECK-NEXT:  %[[X:.*]] = builtin.unrealized_conversion_cast %[[XU]] : memref<8x4xui8> to memref<8x4xi8>
// The projection: blocks of ui8 X rows (operand 0 unsigned) times the head's i8 weights, the i32 sum
// requantized into i8 QK rows.
// CHECK:       %qk = memref.alloc() {alignment = 16 : i64, tinyattn.dma_bytes = {{[0-9]+}} : i64} : memref<2x8x4xi8>
// ROWS8-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x4xi8, "L1">
// ROWS4-NEXT:  %x_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xi8, "L1">
// CHECK-NEXT:  %w_l1 = memref.alloc() {alignment = 16 : i64} : memref<4x4xi8, "L1">
// CHECK-NEXT:  %b_l1 = memref.alloc() {alignment = 16 : i64} : memref<4xi32, "L1">
// CHECK:       scf.for
// CHECK:         dma.start %{{.*}}, %w_l1 : memref<4x4xi8, strided<[4, 1], offset: ?>>, memref<4x4xi8, "L1">
// CHECK:         scf.for
// CHECK:           dma.start %{{.*}}, %x_l1
// CHECK:           kernel.matmul %x_l1, %w_l1 bias %b_l1 into %y_l1 {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 5>}
// CHECK:           dma.start %y_l1, %{{.*}} : memref<{{[0-9]}}x4xi8, "L1">, memref<{{[0-9]}}x4xi8, strided<[4, 1], offset: ?>>
// The scores of a block of QK rows against the whole ui8 X (operand 1 unsigned).
// CHECK:       %scores = memref.alloc() {alignment = 16 : i64} : memref<2x8x8xi8>
// CHECK-NEXT:  %right_l1 = memref.alloc() {alignment = 16 : i64} : memref<8x4xi8, "L1">
// CHECK:       dma.start %[[X]], %right_l1 : memref<8x4xi8>, memref<8x4xi8, "L1">
// CHECK:           kernel.matmul %left_l1, %right_l1 into %a_l1 {unsigned = array<i64: 1>, transpose_rhs,
// The integer softmax of score rows in L1, with its i32 scratch row.
// CHECK:       %row_l1 = memref.alloc() {alignment = 16 : i64} : memref<8xi32, "L1">
// CHECK:           kernel.softmax %a_l1_1 scratch %row_l1 into %a_l1_1 {unsigned = array<i64: 2>,
// CHECK:       %v = memref.alloc() {alignment = 16 : i64} : memref<2x8x2xi8>
// The context of the ui8 probabilities, requantized per channel, written head-interleaved.
// CHECK:       %context = memref.alloc() {alignment = 16 : i64} : memref<8x2x2xi8>
// CHECK:           kernel.matmul %a_l1_2, %v_l1 into %c_l1 {unsigned = array<i64: 0>, requant = #tinyattn.requant<mul = [3, 5], add = [1, -1], shift = 6>}
// CHECK:           dma.start %c_l1, %{{.*}} : memref<{{[0-9]}}x2xi8, "L1">, memref<{{[0-9]}}x2xi8, strided<[4, 1], offset: ?>>
// The output projection over all heads at once, requantized to ui8 (out, operand 3, unsigned).
// CHECK:       %a = memref.alloc() {alignment = 16 : i64} : memref<8x4xi8>
// CHECK:       dma.start %{{.*}}, %wo_l1 : memref<4x4xi8>, memref<4x4xi8, "L1">
// CHECK:         kernel.matmul %c_l1_1, %wo_l1 bias %bo_l1 into %y_l1_2 {unsigned = array<i64: 3>, requant = #tinyattn.requant<mul = 3, add = 100, shift = 5>}
// CHECK:       %[[AU:.*]] = builtin.unrealized_conversion_cast %a : memref<8x4xi8> to memref<8x4xui8>
// CHECK-NEXT:  %[[A:.*]] = bufferization.to_tensor %[[AU]] : memref<8x4xui8> to tensor<8x4xui8>
// CHECK-NEXT:  func.return %[[A]] : tensor<8x4xui8>

// SMALL: tinyattn-opt: error: layerwise-tile: the attention (S=8 E=4 P=2) needs at least 64 bytes of L1 with 1-row blocks, but l1-bytes=63

// On one memory level the layers compute on the L2 data in place; only the integer softmax's
// i32 row (32 bytes) is a scratch buffer.
// INPLACE-NOT: dma.start
// INPLACE:     %qk = memref.alloc() {alignment = 16 : i64, tinyattn.dma_bytes = 0 : i64} : memref<2x8x4xi8>
// INPLACE-NOT: "L1"
// INPLACE:     %scores = memref.alloc() {alignment = 16 : i64} : memref<2x8x8xi8>
// INPLACE:     %row_l1 = memref.alloc() {alignment = 16 : i64} : memref<8xi32, "L1">
// INPLACE-NOT: memref.alloc() {{.*}}"L1">
// INPLACE-NOT: dma.start
// INPLACE:     bufferization.to_tensor
// SMALL-INPLACE: tinyattn-opt: error: layerwise-tile: the attention (S=8 E=4 P=2) needs at least 32 bytes of L1 with 1-row blocks, but l1-bytes=31

// Through the upstream pipeline, with the 128 bytes of L1 the pass planned.
// LOWERED:     llvm.mlir.global private constant @requant_mul{{.*}}(dense<[3, 5]> : tensor<2xi32>)
// LOWERED-NOT: unrealized_conversion_cast
// LOWERED:     llvm.func @main(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) attributes {tinyattn.arena_bytes = {L1 = 128 : i64
// LOWERED-NOT: unrealized_conversion_cast
// LOWERED:     llvm.call @ta_dma_start_2d
