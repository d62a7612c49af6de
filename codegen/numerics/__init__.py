"""Numbers without a graph: CMSIS-NN's fixed-point rules (:mod:`~tinyjax.codegen.numerics.fixedpoint`),
the choice of scales and zero points (:mod:`~tinyjax.codegen.numerics.quantmath`), the integer
kernels bit-exact with CMSIS-NN (:mod:`~tinyjax.codegen.numerics.intops`), their float reference
(:mod:`~tinyjax.codegen.numerics.floatref`) and the float simulation of requantisation
(:mod:`~tinyjax.codegen.numerics.fakequant`). The op table (:mod:`tinyjax.codegen.ops`) is built on
these; nothing here knows a graph."""
