// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --convert-kernels-to-loops %s | %filecheck %s
// RUN: not %tinyattn-opt --convert-kernels-to-loops="target=avr" %s 2>&1 | %filecheck %s --check-prefix=TARGET
// RUN: %tinyattn-opt --split-input-file --verify-diagnostics --convert-kernels-to-loops="profile=true" %s | %filecheck %s --check-prefix=PROFILE

// Profiling: each kernel's code is a region that starts with a call of its marker and ends
// with one of region 0's; the module lists each region's label and MACs per pass.
// PROFILE: builtin.module attributes {tinyattn.profile = [{label = "(between kernels: loops, DMA, glue)", macs = 0 : i64}, {label = "matmul 4x6x8 -> %s", macs = 192 : i64}]}
// PROFILE:   func.call @tinyattn_prof_1() : () -> ()
// PROFILE:   scf.for
// PROFILE:   func.call @tinyattn_prof_0() : () -> ()
// PROFILE:   func.func private @tinyattn_prof_0() -> ()
// PROFILE:   func.func private @tinyattn_prof_1() -> ()

// The generic lowering: a loop nest per output element, the accumulator a loop-carried value
// started at the bias; the transposed rhs is read as K[j, k] (no copy); the scale applies once.
// CHECK-LABEL: func.func @matmul
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %[[B:.*]] = memref.load %b[%[[J]]] : memref<6xf32>
// CHECK:             %[[SUM:.*]] = scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[B]]) -> (f32) {
// CHECK-NEXT:          %[[XV:.*]] = memref.load %x[%[[I]], %[[K]]] : memref<4x8xf32>
// CHECK-NEXT:          %[[KV:.*]] = memref.load %k[%[[J]], %[[K]]] : memref<6x8xf32>
// CHECK-NEXT:          %[[P:.*]] = arith.mulf %[[XV]], %[[KV]] : f32
// CHECK-NEXT:          %[[NEXT:.*]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT:          scf.yield %[[NEXT]] : f32
// CHECK:             %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:        %[[Y:.*]] = arith.mulf %[[SUM]], %[[HALF]] : f32
// CHECK-NEXT:        memref.store %[[Y]], %s[%[[I]], %[[J]]] : memref<4x6xf32>
// CHECK-NOT:     kernel.
func.func @matmul(%x: memref<4x8xf32>, %k: memref<6x8xf32>, %s: memref<4x6xf32>, %b: memref<6xf32>) {
  kernel.matmul %x, %k bias %b into %s {transpose_rhs, scale = 0.5 : f32} : memref<4x8xf32>, memref<6x8xf32> bias memref<6xf32> into memref<4x6xf32>
  func.return
}

// -----

// int8: the unsigned lhs zero-extended, the i8 rhs sign-extended, the partial sums read from
// `acc`, a per-channel requant from read-only tables, clipped to the unsigned out's range.
// CHECK:      "memref.global"() <{sym_name = "requant_mul", type = memref<3xi32>, initial_value = dense<[1, 2, 3]> : tensor<3xi32>, sym_visibility = "private", constant, alignment = 16 : i64}>
// CHECK-LABEL: func.func @int8
// CHECK-NEXT:    %requant_mul = memref.get_global @requant_mul : memref<3xi32>
// CHECK:             %[[A:.*]] = memref.load %acc[%[[I:.*]], %[[J:.*]]] : memref<4x3xi32>
// CHECK:             scf.for {{.*}} iter_args(%{{.*}} = %[[A]]) -> (i32) {
// CHECK:               arith.extui %{{.*}} : i8 to i32
// CHECK:               arith.extsi %{{.*}} : i8 to i32
// CHECK:             memref.load %requant_mul[%[[J]]] : memref<3xi32>
// CHECK:             arith.constant 0 : i32
// CHECK-NEXT:        arith.maxsi
// CHECK-NEXT:        arith.constant 255 : i32
// CHECK-NEXT:        arith.minsi
// CHECK-NEXT:        arith.trunci %{{.*}} : i32 to i8
// CHECK-NEXT:        memref.store %{{.*}}, %y[%[[I]], %[[J]]] : memref<4x3xi8>
func.func @int8(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %acc: memref<4x3xi32>, %y: memref<4x3xi8>) {
  kernel.matmul %x, %w acc %acc into %y {unsigned = array<i64: 0, 3>, requant = #tinyattn.requant<mul = [1, 2, 3], add = 0, shift = 4>} : memref<4x8xi8>, memref<8x3xi8> acc memref<4x3xi32> into memref<4x3xi8>
  func.return
}

// -----

// The integer softmax in place: row max, exponentials through the i32 scratch row, an unsigned
// division per element.
// CHECK-LABEL: func.func @isoftmax
// CHECK:         arith.maxsi
// CHECK:         memref.store %{{.*}}, %row[%{{.*}}] : memref<6xi32>
// CHECK:         memref.load %row[%{{.*}}] : memref<6xi32>
// CHECK:         arith.divui
// CHECK:         memref.store %{{.*}}, %s[%{{.*}}, %{{.*}}] : memref<4x6xi8>
func.func @isoftmax(%s: memref<4x6xi8>, %row: memref<6xi32>) {
  kernel.softmax %s scratch %row into %s {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : memref<4x6xi8> scratch memref<6xi32> into memref<4x6xi8>
  func.return
}

// -----

// An integer softmax whose polynomial does not fit 32 bits is refused, not silently wrapped.
func.func @too_wide(%s: memref<2x4xi8>, %row: memref<4xi32>) {
  kernel.softmax %s scratch %row into %s {unsigned = array<i64: 2>, isoftmax = #tinyattn.isoftmax<coeff_a = 100000, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : memref<2x4xi8> scratch memref<4xi32> into memref<2x4xi8>
  func.return
}
// CHECK: integer softmax #tinyattn.isoftmax<coeff_a = 100000, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256> needs more than 32-bit arithmetic: a*(p + b)^2 + c leaves [0, 2^31)

// TARGET: tinyattn-opt: error: convert-kernels-to-loops: unknown target 'avr' (one of generic, thumbv7em, rv32, gap9)

// -----

// Round half to even by the FPU's own rounding: (|x| + 2^23) - 2^23 below 2^23, the sign put
// back; a sigmoid from exp(-|x|).
// CHECK-LABEL: func.func @float_maps
func.func @float_maps(%x: memref<2x3xf32>, %y: memref<2x3xf32>) {
  kernel.map "round" %x into %y : memref<2x3xf32> into memref<2x3xf32>
  kernel.map "sigmoid" %x into %y : memref<2x3xf32> into memref<2x3xf32>
  func.return
}
// CHECK:      %[[BIG:.*]] = arith.constant 0x4B000000 : f32
// CHECK:      %[[LOW:.*]] = arith.cmpf olt, %[[ABS:.*]], %[[BIG]] : f32
// CHECK-NEXT: %[[UP:.*]] = arith.addf %[[ABS]], %[[BIG]] : f32
// CHECK-NEXT: %[[DOWN:.*]] = arith.subf %[[UP]], %[[BIG]] : f32
// CHECK-NEXT: %{{.*}} = arith.select %[[LOW]], %[[DOWN]], %[[ABS]] : f32
// CHECK:      arith.fptosi
// CHECK:      arith.divf
