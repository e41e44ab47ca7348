"""tinyattn.backend: targets, the upstream MLIR/LLVM pipeline and the toolchain."""
