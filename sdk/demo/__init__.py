"""`ledgerflow demo`, the guided example: train two CNNs as Ray jobs, register, bundle,
serve and A/B test them (`run_demo`).

The steps in order (`main`), the data and models (`models`), the A/B test (`ab`, with
its simulated users in `traffic`), what the steps produced (`results`) and the summary
printed at the end (`summary`). Frameworks load only when the demo runs.
"""

from ledgerflow.demo.main import run_demo

__all__ = ["run_demo"]
