"""Quantisation and the integer reference: BatchNorm folding, calibration and int8 parameters
(:mod:`~tinyjax.codegen.quant.quantize`), and the interpreter that runs a quantised graph with the
CMSIS-NN-exact kernels, the golden output of every C export (:mod:`~tinyjax.codegen.quant.interpreter`)."""
