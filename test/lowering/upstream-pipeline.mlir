// The upstream half of the pipeline by hand (backend/pipeline.py, MLIR_OPT_PASSES, for a 32-bit
// target): xDSL's generic print of a memref-level module goes through mlir-opt-22 to the llvm
// dialect with bare-pointer arguments, i32 indices, the weights as an LLVM constant global, and
// math.exp as a polynomial whose only non-arithmetic piece is floor.
// REQUIRES: mlir
// RUN: %tinyattn-opt --print-op-generic %s | %mlir-opt %upstream-flags-32 -o %t
// RUN: %filecheck %s < %t
// RUN: %filecheck %s --check-prefix=GONE < %t

// CHECK: llvm.mlir.global private constant @w(dense<{{\[\[}}1.000000e+00, 2.000000e+00, 3.000000e+00], [4.000000e+00, 5.000000e+00, 6.000000e+00]]> : tensor<2x3xf32>) {{.*}} : !llvm.array<2 x array<3 x f32>>
// CHECK-LABEL: llvm.func @exp_rows(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) {
// CHECK: llvm.mlir.addressof @w : !llvm.ptr
// CHECK: llvm.getelementptr inbounds|nuw %{{.*}}[%{{.*}}] : (!llvm.ptr, i32) -> !llvm.ptr, f32
// CHECK: llvm.fmul
// CHECK: llvm.intr.floor(%{{.*}}) : (f32) -> f32
// CHECK: llvm.intr.fma
// CHECK: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK: llvm.return

// Nothing above the llvm dialect is left.
// GONE-NOT: {{(memref|scf|cf|arith|math|func)\.|unrealized_conversion_cast}}

"memref.global"() <{sym_name = "w", sym_visibility = "private", type = memref<2x3xf32>, initial_value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>, constant}> : () -> ()

func.func @exp_rows(%x: memref<2x3xf32>, %y: memref<2x3xf32>, %arena: memref<16xi8>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %w = memref.get_global @w : memref<2x3xf32>
  %t = memref.view %arena[%c0][] : memref<16xi8> to memref<3xf32>
  scf.for %i = %c0 to %c2 step %c1 {
    scf.for %j = %c0 to %c3 step %c1 {
      %a = memref.load %x[%i, %j] : memref<2x3xf32>
      %b = memref.load %w[%i, %j] : memref<2x3xf32>
      %p = arith.mulf %a, %b : f32
      memref.store %p, %t[%j] : memref<3xf32>
      %q = memref.load %t[%j] : memref<3xf32>
      %e = math.exp %q : f32
      memref.store %e, %y[%i, %j] : memref<2x3xf32>
    }
  }
  func.return
}
