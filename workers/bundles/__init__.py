"""Bundle conversion: a logged model turned into deployable forms, checked for parity.

`build.build_bundle` is the Ray task; one module per source flavor converts
(`pytorch`, `keras`, `sklearn`); `parity` compares the converted output with the
original's, `manifest` describes the result, `serving` writes how to serve it.
"""
