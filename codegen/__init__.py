"""tinyjax.codegen: int8 quantisation, graph IR, static memory planning and C generation."""
