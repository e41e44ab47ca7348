// Our output parses and verifies in upstream mlir-opt-22 at every stage boundary, and the
// compile driver's stages chain into LLVM IR for a 32-bit target.
// REQUIRES: mlir
// RUN: %tinyattn-opt %s --convert-tinyattn-to-kernels --convert-kernels-to-loops --print-op-generic | %mlir-opt --verify-each | %filecheck %s --check-prefix=LOOPS
// RUN: %tinyattn-opt %s --convert-tinyattn-to-kernels --convert-kernels-to-loops --plan-memory --print-op-generic | %mlir-opt --verify-each | %filecheck %s --check-prefix=PLANNED
// RUN: rm -rf %t && %tinyattn-compile %s --target rv32 -o %t --keep-stages
// RUN: %mlir-opt --verify-each %t/0-memref.mlir | %filecheck %s --check-prefix=PLANNED
// RUN: %filecheck %s --check-prefix=LLVMDIALECT < %t/1-llvm.mlir
// RUN: %filecheck %s --check-prefix=LLVMIR < %t/model.ll

func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %g = arith.constant dense<1.0> : tensor<8xf32>
  %b = arith.constant dense<0.0> : tensor<8xf32>
  %s = tinyattn.softmax %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %n = tinyattn.layernorm %s, %g, %b {epsilon = 1.0e-05 : f32} : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  func.return %n : tensor<4x8xf32>
}

// LOOPS-LABEL: func.func @main(%{{.*}}: memref<4x8xf32>, %{{.*}}: memref<4x8xf32>)
// LOOPS:         memref.alloc() {alignment = 16 : i64} : memref<4x8xf32>
// The softmax's exponential is its own polynomial (exp_nonpositive), the layer norm's root
// upstream's sqrt.
// LOOPS:         math.fma
// LOOPS:         arith.bitcast {{.*}} : i32 to f32
// LOOPS:         math.sqrt
// LOOPS:         memref.dealloc

// PLANNED:       memref.global "private" constant @g : memref<8xf32> = dense<1.000000e+00> {alignment = 16 : i64}
// PLANNED-LABEL: func.func @{{main|tinyattn_model}}(%{{.*}}: memref<4x8xf32>, %{{.*}}: memref<4x8xf32>, %{{.*}}: memref<128xi8>)
// PLANNED:         memref.view %{{.*}}[%{{.*}}][] : memref<128xi8> to memref<4x8xf32>
// PLANNED-NOT:     memref.alloc

// LLVMDIALECT:   llvm.func @tinyattn_model(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// LLVMDIALECT-NOT: math.exp

// LLVMIR:        target datalayout = "e-m:e-p:32:32
// LLVMIR:        target triple = "riscv32-unknown-unknown-elf"
// LLVMIR:        define void @tinyattn_model(ptr {{.*}}, ptr {{.*}}, ptr {{.*}})
// LLVMIR-NOT:    @expf
// LLVMIR-NOT:    @sqrtf
