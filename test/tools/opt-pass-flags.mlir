// Every registered pass is also an mlir-opt-style flag; flags and -p pipelines run in the order
// given, and pass options follow the flag.
// RUN: %tinyattn-opt %s --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l2-bytes=4096" | %filecheck %s
// RUN: %tinyattn-opt %s -p convert-tinyattn-to-kernels,convert-kernels-to-loops --plan-memory | %filecheck %s
// RUN: %tinyattn-opt %s --plan-memory --convert-tinyattn-to-kernels --convert-kernels-to-loops | %filecheck %s --check-prefix=ORDER
// RUN: not %tinyattn-opt %s --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory="l2-bytes=16" 2>&1 | %filecheck %s --check-prefix=SMALL
// RUN: not %tinyattn-opt %s -p no-such-pass 2>&1 | %filecheck %s --check-prefix=UNKNOWN

// CHECK-LABEL: func.func @main(%x: memref<2x4xf32>, %out: memref<2x4xf32>, %arena_l2: memref<32xi8>)
// CHECK:         %r = memref.view %arena_l2
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %r = tinyattn.relu %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = tinyattn.gelu %r : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// Planning before conversion finds no buffers yet: the allocs stay.
// ORDER: %r = memref.alloc() {alignment = 16 : i64} : memref<2x4xf32>
// ORDER-NOT: memref.view
// SMALL: tinyattn-opt: error: @main needs 32 bytes of L2 for its activations, but L2 has 16 bytes
// UNKNOWN: tinyattn-opt: error: Unrecognized passes: ['no-such-pass']
