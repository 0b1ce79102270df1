"""What a run sends: datasets, cohorts, request/response mapping, the payload file; used by the runner and the load process.

- :mod:`~chaosml.workload.builtin_dataset`: the scikit-learn dataset the reference stack serves (``load.dataset``);
- :mod:`~chaosml.workload.user_dataset`: a labelled CSV/Parquet file named by ``load.data``, and which dataset a run uses;
- :mod:`~chaosml.workload.cohorts`: labelled request payloads per cohort (clean, generated, hostile, file cohorts);
- :mod:`~chaosml.workload.evasion`: the ``adversarial-evasion`` cohort's perturbations, computed offline;
- :mod:`~chaosml.workload.mapping`: a user stack's request bodies and response fields;
- :mod:`~chaosml.workload.payload_file`: the payload file the runner writes and the load process reads.
"""
